#pragma once
// torch's fused CPU optimizer kernels (Adam/AdamW, SGD, Adagrad) as XLA FFI handlers.
//
// Each handler updates one parameter and its state in a single pass over memory. The arithmetic is
// written element by element exactly as torch 2.13's aten/src/ATen/native/cpu/Fused{Adam,SGD,Adagrad}Kernel.cpp
// compute it: in the vectorised body every op is one IEEE operation in the op's type (float for
// bfloat16/float16 storage), with a fused multiply-add exactly where torch calls vec::fmadd, scalars cast
// as torch casts them and bias corrections in double. The last (numel % vector width) elements take
// torch's scalar tail, which rounds like its scalar code. The file is built with -ffp-contract=off so the
// compiler adds no other FMA, and once more with AVX2+FMA enabled, chosen at run time.
//
// Elements are independent, so the result does not depend on how the work is split between threads.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <limits>
#include <type_traits>

namespace jol {

// ----- storage types ---------------------------------------------------------------------------------

struct bf16 {
  uint16_t x;
};
struct f16 {
  uint16_t x;
};

inline float to_float(float v) { return v; }
inline double to_float(double v) { return v; }
inline float to_float(bf16 v) {
  uint32_t bits = uint32_t(v.x) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline float to_float(f16 v) {
  // IEEE half -> float (exact), including subnormals, inf and NaN.
  uint32_t h = v.x, sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {
      int e = -1;
      do {
        man <<= 1;
        ++e;
      } while (!(man & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename S>
inline S from_float(float v);
template <>
inline float from_float<float>(float v) { return v; }
template <typename S>
inline S from_double(double v);
template <>
inline double from_double<double>(double v) { return v; }

template <>
inline bf16 from_float<bf16>(float v) {
  // c10::BFloat16's round to nearest even; NaN -> 0x7fc0.
  if (std::isnan(v)) return bf16{0x7fc0};
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return bf16{uint16_t(bits >> 16)};
}
template <>
inline f16 from_float<f16>(float v) {
  // float -> IEEE half, round to nearest even (as F16C's vcvtps2ph and c10::Half).
  uint32_t f;
  std::memcpy(&f, &v, 4);
  uint32_t sign = (f >> 16) & 0x8000u;
  uint32_t a = f & 0x7fffffffu;
  if (a >= 0x7f800000u) return f16{uint16_t(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u))};
  if (a >= 0x477ff000u) return f16{uint16_t(sign | 0x7c00u)};  // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                       // below half's smallest normal
    if (a < 0x33000000u) return f16{uint16_t(sign)};           // < 2^-25: rounds to 0
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                                  // 14..24 (result = m >> (shift))
    uint32_t q = m >> shift, r = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (r > half || (r == half && (q & 1u))) ++q;
    return f16{uint16_t(sign | q)};
  }
  uint32_t q = ((a - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  uint32_t r = a & 0x1fffu;
  if (r > 0x1000u || (r == 0x1000u && (q & 1u))) ++q;
  return f16{uint16_t(sign | q)};
}

template <typename S>
struct Opmath {
  using type = float;
};
template <>
struct Opmath<double> {
  using type = double;
};

template <typename S>
inline typename Opmath<S>::type load(const S* p, int64_t i) {
  return to_float(p[i]);
}
template <typename S>
inline void store(S* p, int64_t i, typename Opmath<S>::type v) {
  if constexpr (std::is_same_v<S, double>) {
    p[i] = v;
  } else {
    p[i] = from_float<S>(v);
  }
}
// A double scalar cast to the storage type and back (torch's ``scalar_t(x)`` inside an opmath expression).
template <typename S>
inline typename Opmath<S>::type via_storage(double x) {
  if constexpr (std::is_same_v<S, double> || std::is_same_v<S, float>) {
    return typename Opmath<S>::type(x);
  } else {
    return to_float(from_float<S>(float(x)));
  }
}
template <typename S>
constexpr bool kHalf = !(std::is_same_v<S, double> || std::is_same_v<S, float>);

// at::vec::maximum: NaN if either is NaN.
template <typename T>
inline T vmaximum(T a, T b) {
  if (a != a || b != b) return std::numeric_limits<T>::quiet_NaN();
  return a > b ? a : b;
}

struct AdamArgs {
  double lr, beta1, beta2, weight_decay, eps, step;
  bool amsgrad, maximize, adamw;
  int64_t tail_start;  // elements at or after it take torch's scalar tail
};

struct SGDArgs {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first;
  int64_t tail_start;
};

struct AdagradArgs {
  double lr, lr_decay, weight_decay, eps, step;
  bool maximize;
  int64_t tail_start;
};

}  // namespace jol
