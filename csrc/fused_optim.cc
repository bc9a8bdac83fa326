// XLA FFI handlers for torch's fused CPU optimizer steps (see kernels.h): each call updates one parameter
// and its state; the Python side (jaxopt_losses/optim/_fused.py) aliases the state (and, in apply_step,
// the parameter) to the outputs so a donated buffer is updated in place.

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "kernels.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jol {

#define JOL_DECLARE(NS, S)                                                                                 \
  namespace NS {                                                                                          \
  template <typename T>                                                                                   \
  void adam_range(const AdamArgs&, int64_t, int64_t, const T*, const T*, const T*, const T*, const T*, T*, \
                  T*, T*, T*);                                                                            \
  template <typename T>                                                                                   \
  void sgd_range(const SGDArgs&, int64_t, int64_t, const T*, const T*, const T*, T*, T*);                 \
  template <typename T>                                                                                   \
  void adagrad_range(const AdagradArgs&, int64_t, int64_t, const T*, const T*, const T*, T*, T*);        \
  extern template void adam_range<S>(const AdamArgs&, int64_t, int64_t, const S*, const S*, const S*,     \
                                     const S*, const S*, S*, S*, S*, S*);                                 \
  extern template void sgd_range<S>(const SGDArgs&, int64_t, int64_t, const S*, const S*, const S*, S*,   \
                                    S*);                                                                  \
  extern template void adagrad_range<S>(const AdagradArgs&, int64_t, int64_t, const S*, const S*,         \
                                        const S*, S*, S*);                                                \
  }
JOL_DECLARE(generic, float)
JOL_DECLARE(generic, double)
JOL_DECLARE(generic, bf16)
JOL_DECLARE(generic, f16)
#ifdef JOL_HAVE_AVX2
JOL_DECLARE(avx2, float)
JOL_DECLARE(avx2, double)
JOL_DECLARE(avx2, bf16)
JOL_DECLARE(avx2, f16)
#endif

namespace {

bool use_avx2() {
#ifdef JOL_HAVE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// Bytes in one at::vec::Vectorized on this CPU as torch 2.13 chooses it (AVX512 when the CPU has
// avx512f/bw/vl/dq, else 32), or as ATEN_CPU_CAPABILITY forces it. The last numel % (bytes / itemsize)
// elements of a tensor take torch's scalar tail.
int64_t torch_vector_bytes() {
  static const int64_t bytes = [] {
    const char* env = std::getenv("ATEN_CPU_CAPABILITY");
    if (env != nullptr) {
      std::string cap(env);
      for (auto& c : cap) c = char(std::tolower(c));
      if (cap == "avx512") return int64_t(64);
      if (cap == "avx2" || cap == "default") return int64_t(32);
    }
#if defined(__x86_64__) || defined(_M_X64)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return int64_t(64);
#endif
    return int64_t(32);
  }();
  return bytes;
}

// Runs fn(begin, end) over [0, n) in chunks of whole cache lines, on XLA's intra-op thread pool and the
// calling thread. Chunks are claimed from a shared counter, so the caller alone can finish all of them: a
// task the pool starts late finds nothing left and returns (it holds the shared state, not the stack).
template <typename F>
void parallel_for(ffi::ThreadPool& pool, int64_t n, int64_t line, F fn) {
  constexpr int64_t kMinPerThread = int64_t(1) << 13;  // elements; below this threads do not pay
  int64_t threads = pool.num_threads();
  if (threads <= 1 || n < 2 * kMinPerThread) {
    fn(int64_t(0), n);
    return;
  }
  threads = std::min<int64_t>(threads + 1, n / kMinPerThread);
  int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
  chunk = (chunk + line - 1) / line * line;
  const int64_t nchunks = (n + chunk - 1) / chunk;
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  auto work = [state, nchunks, chunk, n, fn]() {
    for (;;) {
      int64_t c = state->next.fetch_add(1);
      if (c >= nchunks) return;
      fn(c * chunk, std::min(n, (c + 1) * chunk));
      if (state->done.fetch_add(1) + 1 == nchunks) {
        std::lock_guard<std::mutex> lock(state->mu);
        state->cv.notify_all();
      }
    }
  };
  for (int64_t t = 0; t + 1 < threads; ++t) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done.load() == nchunks; });
}

double scalar_of(const ffi::AnyBuffer& b) {
  switch (b.element_type()) {
    case ffi::DataType::F32:
      return double(*reinterpret_cast<const float*>(b.untyped_data()));
    case ffi::DataType::F64:
      return *reinterpret_cast<const double*>(b.untyped_data());
    case ffi::DataType::S32:
      return double(*reinterpret_cast<const int32_t*>(b.untyped_data()));
    default:
      return std::nan("");
  }
}

template <typename S>
const S* in(const ffi::AnyBuffer& b) {
  return reinterpret_cast<const S*>(b.untyped_data());
}
template <typename S>
S* out(ffi::Result<ffi::AnyBuffer>& b) {
  return reinterpret_cast<S*>(b->untyped_data());
}

// Calls body.template operator()<S>() for the parameter's storage type.
template <typename Body>
ffi::Error dispatch(ffi::DataType t, Body body) {
  switch (t) {
    case ffi::DataType::F32:
      return body.template operator()<float>();
    case ffi::DataType::F64:
      return body.template operator()<double>();
    case ffi::DataType::BF16:
      return body.template operator()<bf16>();
    case ffi::DataType::F16:
      return body.template operator()<f16>();
    default:
      return ffi::Error::InvalidArgument("jaxopt_losses fused kernels support float16/bfloat16/float32/float64");
  }
}

int64_t tail_start(int64_t n, int64_t itemsize) {
  const int64_t w = torch_vector_bytes() / itemsize;
  return n - n % w;
}

// The step count buffer holds the steps already taken (optax's int32 count); torch's kernels see
// state_step after its increment, read as a float.
double torch_step(const ffi::AnyBuffer& count) { return double(float(scalar_of(count) + 1.0)); }

ffi::Error AdamImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::AnyBuffer g,
                    ffi::AnyBuffer p, ffi::AnyBuffer m, ffi::AnyBuffer v, ffi::AnyBuffer x,
                    ffi::Result<ffi::AnyBuffer> p_out, ffi::Result<ffi::AnyBuffer> m_out,
                    ffi::Result<ffi::AnyBuffer> v_out, ffi::Result<ffi::AnyBuffer> x_out, double lr_value,
                    bool lr_from_buffer, double beta1, double beta2, double weight_decay, double eps,
                    bool amsgrad, bool maximize, bool adamw) {
  const int64_t n = int64_t(p.element_count());
  AdamArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, beta1, beta2, weight_decay, eps, torch_step(count),
             amsgrad, maximize, adamw, 0};
  return dispatch(p.element_type(), [&]<typename S>() {
    a.tail_start = tail_start(n, sizeof(S));
    const S* xi = amsgrad ? in<S>(x) : nullptr;
    S* xo = amsgrad ? out<S>(x_out) : nullptr;
    const bool avx2 = use_avx2();
    parallel_for(pool, n, 64 / int64_t(sizeof(S)), [&, xi, xo, avx2](int64_t b, int64_t e) {
#ifdef JOL_HAVE_AVX2
      if (avx2)
        return avx2::adam_range<S>(a, b, e, in<S>(g), in<S>(p), in<S>(m), in<S>(v), xi, out<S>(p_out),
                                   out<S>(m_out), out<S>(v_out), xo);
#endif
      generic::adam_range<S>(a, b, e, in<S>(g), in<S>(p), in<S>(m), in<S>(v), xi, out<S>(p_out),
                             out<S>(m_out), out<S>(v_out), xo);
    });
    return ffi::Error::Success();
  });
}

ffi::Error SGDImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::AnyBuffer g,
                   ffi::AnyBuffer p, ffi::AnyBuffer buf, ffi::Result<ffi::AnyBuffer> p_out,
                   ffi::Result<ffi::AnyBuffer> buf_out, double lr_value, bool lr_from_buffer, double momentum,
                   double dampening, double weight_decay, bool nesterov, bool maximize) {
  const int64_t n = int64_t(p.element_count());
  SGDArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, momentum, dampening, weight_decay, nesterov, maximize,
            scalar_of(count) == 0.0, 0};
  return dispatch(p.element_type(), [&]<typename S>() {
    a.tail_start = tail_start(n, sizeof(S));
    const bool mom = momentum != 0.0;
    const S* bi = mom ? in<S>(buf) : nullptr;
    S* bo = mom ? out<S>(buf_out) : nullptr;
    const bool avx2 = use_avx2();
    parallel_for(pool, n, 64 / int64_t(sizeof(S)), [&, bi, bo, avx2](int64_t b, int64_t e) {
#ifdef JOL_HAVE_AVX2
      if (avx2) return avx2::sgd_range<S>(a, b, e, in<S>(g), in<S>(p), bi, out<S>(p_out), bo);
#endif
      generic::sgd_range<S>(a, b, e, in<S>(g), in<S>(p), bi, out<S>(p_out), bo);
    });
    return ffi::Error::Success();
  });
}

ffi::Error AdagradImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::AnyBuffer g,
                       ffi::AnyBuffer p, ffi::AnyBuffer s, ffi::Result<ffi::AnyBuffer> p_out,
                       ffi::Result<ffi::AnyBuffer> s_out, double lr_value, bool lr_from_buffer,
                       double lr_decay, double weight_decay, double eps, bool maximize) {
  const int64_t n = int64_t(p.element_count());
  AdagradArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, lr_decay, weight_decay, eps, torch_step(count),
                maximize, 0};
  return dispatch(p.element_type(), [&]<typename S>() {
    a.tail_start = tail_start(n, sizeof(S));
    const bool avx2 = use_avx2();
    parallel_for(pool, n, 64 / int64_t(sizeof(S)), [&, avx2](int64_t b, int64_t e) {
#ifdef JOL_HAVE_AVX2
      if (avx2)
        return avx2::adagrad_range<S>(a, b, e, in<S>(g), in<S>(p), in<S>(s), out<S>(p_out), out<S>(s_out));
#endif
      generic::adagrad_range<S>(a, b, e, in<S>(g), in<S>(p), in<S>(s), out<S>(p_out), out<S>(s_out));
    });
    return ffi::Error::Success();
  });
}

}  // namespace
}  // namespace jol

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_adam, jol::AdamImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // lr (read when lr_from_buffer)
                                  .Arg<ffi::AnyBuffer>()  // count: steps already taken (int32)
                                  .Arg<ffi::AnyBuffer>()  // grad
                                  .Arg<ffi::AnyBuffer>()  // param
                                  .Arg<ffi::AnyBuffer>()  // exp_avg
                                  .Arg<ffi::AnyBuffer>()  // exp_avg_sq
                                  .Arg<ffi::AnyBuffer>()  // max_exp_avg_sq (a placeholder unless amsgrad)
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("beta1")
                                  .Attr<double>("beta2")
                                  .Attr<double>("weight_decay")
                                  .Attr<double>("eps")
                                  .Attr<bool>("amsgrad")
                                  .Attr<bool>("maximize")
                                  .Attr<bool>("adamw"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_sgd, jol::SGDImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // lr
                                  .Arg<ffi::AnyBuffer>()  // count
                                  .Arg<ffi::AnyBuffer>()  // grad
                                  .Arg<ffi::AnyBuffer>()  // param
                                  .Arg<ffi::AnyBuffer>()  // momentum_buffer (a placeholder without momentum)
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("momentum")
                                  .Attr<double>("dampening")
                                  .Attr<double>("weight_decay")
                                  .Attr<bool>("nesterov")
                                  .Attr<bool>("maximize"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_adagrad, jol::AdagradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()  // lr
                                  .Arg<ffi::AnyBuffer>()  // count
                                  .Arg<ffi::AnyBuffer>()  // grad
                                  .Arg<ffi::AnyBuffer>()  // param
                                  .Arg<ffi::AnyBuffer>()  // state_sum
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("lr_decay")
                                  .Attr<double>("weight_decay")
                                  .Attr<double>("eps")
                                  .Attr<bool>("maximize"));
