#define JOL_NS avx2
#include "kernels.inc"
