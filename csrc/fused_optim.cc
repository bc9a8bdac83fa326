// XLA FFI handlers for torch's fused CPU optimizer steps (see kernels.h). One call updates every parameter
// of a pytree and its state, as torch's _fused_adam_/_fused_sgd_/_fused_adagrad_ take tensor lists: the
// operands after lr and count are, per parameter, (grad, param, state...), and the results (param,
// state...). The Python side (jaxopt_losses/optim/_fused.py) aliases the state (and, in apply_step, the
// parameter) to the results so a donated buffer is updated in place. The work of all the tensors is split
// between XLA's intra-op threads in one fork/join.

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

double scalar_of(const ffi::AnyBuffer& b) {
  switch (b.element_type()) {
    case ffi::DataType::F32:
      return double(*reinterpret_cast<const float*>(b.untyped_data()));
    case ffi::DataType::F64:
      return *reinterpret_cast<const double*>(b.untyped_data());
    case ffi::DataType::S32:
      return double(*reinterpret_cast<const int32_t*>(b.untyped_data()));
    case ffi::DataType::U32:  // a double's two 32-bit words (an exact double lr without jax's x64)
      if (b.element_count() == 2) {
        double d;
        std::memcpy(&d, b.untyped_data(), sizeof(d));
        return d;
      }
      return std::nan("");
    default:
      return std::nan("");
  }
}


// One tensor of a call: its storage type and size, its operands (grad, param, state...) and results
// (param, state...).
constexpr int kMaxState = 3;
struct Leaf {
  ffi::DataType dtype;
  int64_t n;
  const void* in[2 + kMaxState];
  void* out[1 + kMaxState];
};

int64_t itemsize(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F64:
      return 8;
    case ffi::DataType::F32:
      return 4;
    case ffi::DataType::BF16:
    case ffi::DataType::F16:
      return 2;
    default:
      return 0;
  }
}

// The leaves of a call with nstate state buffers per parameter, checked: every operand of a leaf has the
// parameter's supported floating type and size.
ffi::Error parse_leaves(const ffi::RemainingArgs& args, const ffi::RemainingRets& rets, int64_t nstate,
                        std::vector<Leaf>& leaves) {
  const int64_t nin = 2 + nstate, nout = 1 + nstate;
  if (nstate < 0 || nstate > kMaxState || int64_t(args.size()) % nin != 0 ||
      int64_t(rets.size()) != int64_t(args.size()) / nin * nout)
    return ffi::Error::InvalidArgument("jaxopt_losses fused kernels: operands do not match the state buffers");
  const int64_t count = int64_t(args.size()) / nin;
  leaves.resize(size_t(count));
  for (int64_t l = 0; l < count; ++l) {
    Leaf& leaf = leaves[size_t(l)];
    auto p = args.get<ffi::AnyBuffer>(size_t(l * nin + 1));
    if (!p.has_value()) return p.error();
    leaf.dtype = p->element_type();
    leaf.n = int64_t(p->element_count());
    if (itemsize(leaf.dtype) == 0)
      return ffi::Error::InvalidArgument("jaxopt_losses fused kernels support float16/bfloat16/float32/float64");
    for (int64_t k = 0; k < nin; ++k) {
      auto b = args.get<ffi::AnyBuffer>(size_t(l * nin + k));
      if (!b.has_value()) return b.error();
      if (b->element_type() != leaf.dtype || int64_t(b->element_count()) != leaf.n)
        return ffi::Error::InvalidArgument("jaxopt_losses fused kernels: a buffer's type or size differs from its parameter's");
      leaf.in[k] = b->untyped_data();
    }
    for (int64_t k = 0; k < nout; ++k) {
      auto r = rets.get<ffi::AnyBuffer>(size_t(l * nout + k));
      if (!r.has_value()) return r.error();
      if ((*r)->element_type() != leaf.dtype || int64_t((*r)->element_count()) != leaf.n)
        return ffi::Error::InvalidArgument("jaxopt_losses fused kernels: a result's type or size differs from its parameter's");
      leaf.out[k] = (*r)->untyped_data();
    }
  }
  return ffi::Error::Success();
}

// A contiguous element range [begin, end) of one leaf.
struct Piece {
  int64_t leaf, begin, end;
};

// Runs fn(leaf, begin, end) over every element of every leaf. The leaves' bytes, laid end to end, are cut
// into contiguous runs of about equal size (cuts inside a tensor fall on cache lines); the runs are claimed
// from a shared counter by the calling thread and XLA's intra-op threads, so the caller alone can finish
// all of them: a task the pool starts late finds nothing left and returns (it holds the shared state, not
// the stack). Every pool thread is offered work besides the caller: with only as many threads as cores,
// a pool thread woken late (another process on its core) left the caller alone for most of the step (1.1
// cores busy; measured on 2 cores under load), while the extra thread costs at most one run's time at the
// join. Many small runs per thread keep that cost and the imbalance small (16 measured best of 1/4/16/32/64
// on 2 cores, interleaved against torch's fused step). Below kMinRunBytes a run does not pay for a thread.
template <typename F>
void for_each_piece(ffi::ThreadPool& pool, const std::vector<Leaf>& leaves, F fn) {
  constexpr int64_t kMinRunBytes = int64_t(1) << 16;
  constexpr int64_t kRunsPerWorker = 16;
  int64_t total = 0;
  for (const Leaf& l : leaves) total += l.n * itemsize(l.dtype);
  const int64_t workers = std::max<int64_t>(1, pool.num_threads() + 1);
  const int64_t runs = std::min<int64_t>(workers * kRunsPerWorker, total / kMinRunBytes);
  if (workers <= 1 || runs <= 1) {
    for (int64_t l = 0; l < int64_t(leaves.size()); ++l)
      if (leaves[size_t(l)].n > 0) fn(leaves[size_t(l)], int64_t(0), leaves[size_t(l)].n);
    return;
  }
  struct State {
    std::vector<Piece> pieces;
    std::vector<int64_t> run_start;  // pieces[run_start[r], run_start[r + 1]) make run r
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  state->run_start.push_back(0);
  int64_t offset = 0, run = 1;  // bytes before the current leaf; the next cut is at run * total / runs
  for (int64_t l = 0; l < int64_t(leaves.size()); ++l) {
    const Leaf& leaf = leaves[size_t(l)];
    const int64_t size = itemsize(leaf.dtype), line = 64 / size;
    int64_t begin = 0;
    while (run < runs && run * total / runs < offset + leaf.n * size) {
      int64_t cut = (run * total / runs - offset) / size / line * line;
      cut = std::clamp<int64_t>(cut, begin, leaf.n);
      if (cut > begin) state->pieces.push_back({l, begin, cut});
      begin = cut;
      state->run_start.push_back(int64_t(state->pieces.size()));
      ++run;
    }
    if (leaf.n > begin) state->pieces.push_back({l, begin, leaf.n});
    offset += leaf.n * size;
  }
  state->run_start.push_back(int64_t(state->pieces.size()));
  const int64_t nruns = int64_t(state->run_start.size()) - 1;
  const Leaf* base = leaves.data();
  auto work = [state, nruns, base, fn]() {
    for (;;) {
      const int64_t r = state->next.fetch_add(1);
      if (r >= nruns) return;
      for (int64_t i = state->run_start[size_t(r)]; i < state->run_start[size_t(r + 1)]; ++i) {
        const Piece& pc = state->pieces[size_t(i)];
        fn(base[pc.leaf], pc.begin, pc.end);
      }
      if (state->done.fetch_add(1) + 1 == nruns) {
        std::lock_guard<std::mutex> lock(state->mu);
        state->cv.notify_all();
      }
    }
  };
  for (int64_t t = 0; t + 1 < std::min(workers, nruns); ++t) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done.load() == nruns; });
}

// Calls body.template operator()<S>() for a (checked) storage type.
template <typename Body>
void dispatch(ffi::DataType t, Body&& body) {
  switch (t) {
    case ffi::DataType::F32:
      return body.template operator()<float>();
    case ffi::DataType::F64:
      return body.template operator()<double>();
    case ffi::DataType::BF16:
      return body.template operator()<bf16>();
    default:
      return body.template operator()<f16>();
  }
}

int64_t tail_start(int64_t n, int64_t itemsize) {
  const int64_t w = torch_vector_bytes() / itemsize;
  return n - n % w;
}

// The step count buffer holds the steps already taken (optax's int32 count); torch's kernels see
// state_step after its increment, read as a float.
double torch_step(const ffi::AnyBuffer& count) { return double(float(scalar_of(count) + 1.0)); }

template <typename S>
const S* in(const Leaf& l, int k) {
  return static_cast<const S*>(l.in[k]);
}
template <typename S>
S* out(const Leaf& l, int k) {
  return static_cast<S*>(l.out[k]);
}

#ifdef JOL_HAVE_AVX2
#define JOL_RANGE(FN, ...) (use_avx2() ? avx2::FN(__VA_ARGS__) : generic::FN(__VA_ARGS__))
#else
#define JOL_RANGE(FN, ...) generic::FN(__VA_ARGS__)
#endif

ffi::Error AdamImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::RemainingArgs args,
                    ffi::RemainingRets rets, double lr_value, bool lr_from_buffer, double beta1, double beta2,
                    double weight_decay, double eps, bool amsgrad, bool maximize, bool adamw, int64_t nstate) {
  std::vector<Leaf> leaves;
  if (nstate != (amsgrad ? 3 : 2)) return ffi::Error::InvalidArgument("adam takes 2 state buffers, 3 with amsgrad");
  if (ffi::Error err = parse_leaves(args, rets, nstate, leaves); err.failure()) return err;
  const AdamArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, beta1, beta2, weight_decay, eps, torch_step(count),
                   amsgrad, maximize, adamw, 0};
  for_each_piece(pool, leaves, [a](const Leaf& l, int64_t b, int64_t e) {
    dispatch(l.dtype, [&]<typename S>() {
      AdamArgs la = a;
      la.tail_start = tail_start(l.n, sizeof(S));
      const S* xi = a.amsgrad ? in<S>(l, 4) : nullptr;
      S* xo = a.amsgrad ? out<S>(l, 3) : nullptr;
      JOL_RANGE(adam_range<S>, la, b, e, in<S>(l, 0), in<S>(l, 1), in<S>(l, 2), in<S>(l, 3), xi, out<S>(l, 0),
                out<S>(l, 1), out<S>(l, 2), xo);
    });
  });
  return ffi::Error::Success();
}

ffi::Error SGDImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::RemainingArgs args,
                   ffi::RemainingRets rets, double lr_value, bool lr_from_buffer, double momentum,
                   double dampening, double weight_decay, bool nesterov, bool maximize, int64_t nstate) {
  // nstate: 1 with a momentum buffer (torch allocates one unless momentum is the number 0), else 0.
  std::vector<Leaf> leaves;
  if (nstate > 1) return ffi::Error::InvalidArgument("sgd takes at most one state buffer");
  if (ffi::Error err = parse_leaves(args, rets, nstate, leaves); err.failure()) return err;
  if (momentum != 0.0 && nstate != 1) return ffi::Error::InvalidArgument("sgd with momentum needs its buffer");
  const SGDArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, momentum, dampening, weight_decay, nesterov, maximize,
                  scalar_of(count) == 0.0, 0};
  for_each_piece(pool, leaves, [a](const Leaf& l, int64_t b, int64_t e) {
    dispatch(l.dtype, [&]<typename S>() {
      SGDArgs la = a;
      la.tail_start = tail_start(l.n, sizeof(S));
      const bool mom = a.momentum != 0.0;
      JOL_RANGE(sgd_range<S>, la, b, e, in<S>(l, 0), in<S>(l, 1), mom ? in<S>(l, 2) : nullptr, out<S>(l, 0),
                mom ? out<S>(l, 1) : nullptr);
    });
  });
  return ffi::Error::Success();
}

ffi::Error AdagradImpl(ffi::ThreadPool pool, ffi::AnyBuffer lr, ffi::AnyBuffer count, ffi::RemainingArgs args,
                       ffi::RemainingRets rets, double lr_value, bool lr_from_buffer, double lr_decay,
                       double weight_decay, double eps, bool maximize, int64_t nstate) {
  std::vector<Leaf> leaves;
  if (nstate != 1) return ffi::Error::InvalidArgument("adagrad takes 1 state buffer");
  if (ffi::Error err = parse_leaves(args, rets, nstate, leaves); err.failure()) return err;
  const AdagradArgs a{lr_from_buffer ? scalar_of(lr) : lr_value, lr_decay, weight_decay, eps, torch_step(count),
                      maximize, 0};
  for_each_piece(pool, leaves, [a](const Leaf& l, int64_t b, int64_t e) {
    dispatch(l.dtype, [&]<typename S>() {
      AdagradArgs la = a;
      la.tail_start = tail_start(l.n, sizeof(S));
      JOL_RANGE(adagrad_range<S>, la, b, e, in<S>(l, 0), in<S>(l, 1), in<S>(l, 2), out<S>(l, 0), out<S>(l, 1));
    });
  });
  return ffi::Error::Success();
}

}  // namespace
}  // namespace jol

// The calling convention of the handlers below, checked by jaxopt_losses/optim/_fused.py when it loads the
// library (a library built from older sources is refused with a message, not called with wrong operands).
// 2: one call for all the parameters (variadic operands, nstate attribute).
extern "C" int jaxopt_losses_fused_abi_version() { return 3; }

// Operands: lr (read when lr_from_buffer), count (steps already taken, int32), then per parameter
// (grad, param, state...); results per parameter (param, state...); nstate: state buffers per parameter.
XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_adam, jol::AdamImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()  // grad, param, exp_avg, exp_avg_sq[, max_exp_avg_sq]
                                  .RemainingRets()  // param, exp_avg, exp_avg_sq[, max_exp_avg_sq]
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("beta1")
                                  .Attr<double>("beta2")
                                  .Attr<double>("weight_decay")
                                  .Attr<double>("eps")
                                  .Attr<bool>("amsgrad")
                                  .Attr<bool>("maximize")
                                  .Attr<bool>("adamw")
                                  .Attr<int64_t>("nstate"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_sgd, jol::SGDImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()  // grad, param[, momentum_buffer]
                                  .RemainingRets()  // param[, momentum_buffer]
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("momentum")
                                  .Attr<double>("dampening")
                                  .Attr<double>("weight_decay")
                                  .Attr<bool>("nesterov")
                                  .Attr<bool>("maximize")
                                  .Attr<int64_t>("nstate"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(jaxopt_losses_fused_adagrad, jol::AdagradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .RemainingArgs()  // grad, param, state_sum
                                  .RemainingRets()  // param, state_sum
                                  .Attr<double>("lr")
                                  .Attr<bool>("lr_from_buffer")
                                  .Attr<double>("lr_decay")
                                  .Attr<double>("weight_decay")
                                  .Attr<double>("eps")
                                  .Attr<bool>("maximize")
                                  .Attr<int64_t>("nstate"));
