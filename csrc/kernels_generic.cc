#define JOL_NS generic
#include "kernels.inc"
