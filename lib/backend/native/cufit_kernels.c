/*
 * cufit_kernels: the element-wise and small-matrix work of a training step,
 * multi-threaded, for the native kernels of kernels.ts (loaded through Deno
 * FFI by c_kernels.ts; built by `deno task build:native`).
 *
 * tfjs-wasm runs every kernel that is not a matrix product on one thread,
 * in scalar code. At 224 px that is half of a linear-probing step and a third
 * of a CUFIT step, whatever the core count (BENCHMARKS.md, "Where a step's
 * time goes"). This library does the largest of that work on every core:
 *
 * - cufit_gelu: exact (erf) GELU and its slope, the formula of _gelu.ts
 *   (Abramowitz & Stegun 7.1.26 in double precision, tfjs's constants) in
 *   a loop the compiler vectorizes, with an exp accurate to ~1e-15;
 * - cufit_softmax_grad: the softmax backward of _softmax_grad.ts, by rows;
 * - cufit_layer_norm, cufit_layer_norm_grad: LayerNorm over the last axis
 *   with its affine, and its input gradient, one pass over each row where
 *   tfjs makes ~8 (statistics in double precision);
 * - cufit_softmax: the softmax over the last axis, by rows, with a float32
 *   exp accurate to ~2 ulp (tfjs-wasm's, from XNNPACK, is of that order);
 * - cufit_gather_rows: copies of equal-length runs of floats (the rows of a
 *   transpose that keeps the last axis, the runs of a slice);
 * - cufit_binary: a * b, a + b, a - b element-wise, b the same size as a or
 *   one row repeated (float32 arithmetic, as tfjs: equal to the last bit);
 * - cufit_sgemm_batch: many small products (attention's per-head ones),
 *   one OpenBLAS sgemm per matrix, matrices spread over the threads.
 *
 * GELU equals the TypeScript version to the last float32 bit, but for rare
 * one-ulp differences where the exps differ in the last double bit; the
 * copies, the element-wise ops and the softmax backward are exact; the
 * softmax and LayerNorm round differently from tfjs in the last digits
 * (tests/c_kernels_test.ts holds each to its bound).
 *
 * Threads: a small pool of POSIX threads that sleep on a condition variable
 * between jobs (no spinning: the machine may be shared, and OpenBLAS has
 * threads of its own). The calling thread takes part in every job; chunks
 * are handed out dynamically, so a descheduled helper delays a job by one
 * chunk at most. Jobs run one at a time: a call from a second thread (a
 * Web Worker, or `deno test` running files side by side in one process)
 * waits for the current job to end.
 *
 * Nothing here reads files or the environment, or opens a library: the
 * batched products call the cblas_sgemm the caller passes, from an OpenBLAS
 * it holds open for the length of the call.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#ifndef CUFIT_SOURCE_ID
#define CUFIT_SOURCE_ID 0
#endif

/* Bumped when a signature below changes; c_kernels.ts checks it. */
#define CUFIT_ABI 5

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* One build for every x86-64 CPU: the loader picks the widest version. */
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

uint64_t cufit_source_id(void) { return CUFIT_SOURCE_ID; }
int32_t cufit_abi(void) { return CUFIT_ABI; }

/* ---------------------------------------------------------------- pool */

#define MAX_THREADS 256

typedef void (*range_fn)(const void *ctx, int64_t begin, int64_t end);

/* Held by the caller for a whole job: one job at a time. */
static pthread_mutex_t job_mu = PTHREAD_MUTEX_INITIALIZER;
/* Guards the fields below it. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static int pool_threads = 1; /* wanted, the caller included */
static int pool_started = 0; /* helper threads running */
static uint64_t pool_generation = 0;
static int pool_active = 0; /* helpers taking part in the current job */
static int pool_busy = 0;   /* of those, the ones not finished yet */
static range_fn job_fn;
static const void *job_ctx;
static int64_t job_n;
static int64_t job_grain;
static atomic_int_fast64_t job_next;

static void run_chunks(void) {
  for (;;) {
    int64_t begin = atomic_fetch_add(&job_next, job_grain);
    if (begin >= job_n) return;
    int64_t end = begin + job_grain < job_n ? begin + job_grain : job_n;
    job_fn(job_ctx, begin, end);
  }
}

static void *helper_main(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    while (pool_generation == seen) pthread_cond_wait(&pool_wake, &pool_mu);
    seen = pool_generation;
    if (id >= pool_active) continue;
    pthread_mutex_unlock(&pool_mu);
    run_chunks();
    pthread_mutex_lock(&pool_mu);
    if (--pool_busy == 0) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

/* Sets the thread count (the caller included); returns the count in force. */
int32_t cufit_set_threads(int32_t threads) {
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  pthread_mutex_lock(&pool_mu);
  pool_threads = threads;
  pthread_mutex_unlock(&pool_mu);
  return threads;
}

/* Calls fn over [0, n) in chunks of `grain`, on up to pool_threads threads. */
static void parallel_for(range_fn fn, const void *ctx, int64_t n,
                         int64_t grain) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  pthread_mutex_lock(&job_mu);
  pthread_mutex_lock(&pool_mu);
  int helpers = pool_threads - 1;
  if (helpers > chunks - 1) helpers = (int)(chunks - 1);
  while (pool_started < helpers) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&t, &attr, helper_main,
                                (void *)(intptr_t)pool_started);
    pthread_attr_destroy(&attr);
    if (failed) break;
    pool_started++;
  }
  if (helpers > pool_started) helpers = pool_started;
  if (helpers <= 0) {
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&job_mu);
    fn(ctx, 0, n);
    return;
  }
  job_fn = fn;
  job_ctx = ctx;
  job_n = n;
  job_grain = grain;
  atomic_store(&job_next, 0);
  pool_active = helpers;
  pool_busy = helpers;
  pool_generation++;
  pthread_cond_broadcast(&pool_wake);
  pthread_mutex_unlock(&pool_mu);
  run_chunks();
  pthread_mutex_lock(&pool_mu);
  while (pool_busy > 0) pthread_cond_wait(&pool_done, &pool_mu);
  pthread_mutex_unlock(&pool_mu);
  pthread_mutex_unlock(&job_mu);
}

/* Element-wise jobs hand out chunks of this many values (~256 KB of input). */
#define GRAIN (1 << 16)

/* ---------------------------------------------------------------- GELU */

/* tfjs backend_util ERF_P and ERF_A1..A5 (Abramowitz & Stegun 7.1.26). */
static const double ERF_P = 0.3275911;
static const double ERF_A1 = 0.254829592;
static const double ERF_A2 = -0.284496736;
static const double ERF_A3 = 1.421413741;
static const double ERF_A4 = -1.453152027;
static const double ERF_A5 = 1.061405429;
static const double INV_SQRT_2PI = 0.3989422804014327;
static const double SQRT1_2 = 0.7071067811865476;
/* Beyond |x| = 12 the float32 results are x and 1, or 0 and 0. */
static const double TAIL = 12.0;

/*
 * exp(a) for a in [-80, 0]: a = k ln 2 + r with |r| <= ln 2 / 2, a degree-11
 * Taylor polynomial for exp(r) (truncation below 6e-15 relative), 2^k built
 * in the exponent bits. Branch-free so that the loops below vectorize.
 */
static inline double exp_neg(double a) {
  const double shifter = 0x1.8p52;
  double t = a * 1.4426950408889634 + shifter;
  double k = t - shifter;
  double r = (a - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33;
  double p = 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits + 1023) << 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* 1 + erf(v / sqrt 2), and exp(-v^2 / 2) in *e; v within [-TAIL, TAIL]. */
static inline double cdf2_of(double v, double *e) {
  double z = fabs(v) * SQRT1_2;
  double t = 1.0 / (1.0 + ERF_P * z);
  *e = exp_neg(-z * z);
  double poly =
      t * (ERF_A1 + t * (ERF_A2 + t * (ERF_A3 + t * (ERF_A4 + t * ERF_A5))));
  double erfc = poly * *e;
  return v >= 0 ? 2.0 - erfc : erfc;
}

VECTOR_CLONES
static void gelu_loop(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    double c = v > TAIL ? TAIL : (v < -TAIL ? -TAIL : v);
    double e;
    double cdf2 = cdf2_of(c, &e);
    double out = 0.5 * v * cdf2;
    y[i] = (float)(v > TAIL ? v : (v < -TAIL ? 0.0 : out));
  }
}

VECTOR_CLONES
static void gelu_slope_loop(const float *x, float *y, float *slope,
                            int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    double c = v > TAIL ? TAIL : (v < -TAIL ? -TAIL : v);
    double e;
    double cdf2 = cdf2_of(c, &e);
    double out = 0.5 * v * cdf2;
    double d = 0.5 * cdf2 + v * e * INV_SQRT_2PI;
    y[i] = (float)(v > TAIL ? v : (v < -TAIL ? 0.0 : out));
    slope[i] = (float)(v > TAIL ? 1.0 : (v < -TAIL ? 0.0 : d));
  }
}

struct gelu_job {
  const float *x;
  float *y;
  float *slope;
};

static void gelu_range(const void *ctx, int64_t begin, int64_t end) {
  const struct gelu_job *j = ctx;
  if (j->slope)
    gelu_slope_loop(j->x + begin, j->y + begin, j->slope + begin, end - begin);
  else
    gelu_loop(j->x + begin, j->y + begin, end - begin);
}

/*
 * y = 0.5 x (1 + erf(x / sqrt 2)) and, when slope is not NULL, its
 * derivative. y may be x; slope must not overlap x.
 */
void cufit_gelu(const float *x, float *y, float *slope, int64_t n) {
  struct gelu_job j = {x, y, slope};
  parallel_for(gelu_range, &j, n, GRAIN);
}

/* -------------------------------------------------------- softmax grad */

struct softmax_grad_job {
  const float *p;
  const float *g;
  float *out;
  int64_t cols;
};

static void softmax_grad_range(const void *ctx, int64_t begin, int64_t end) {
  const struct softmax_grad_job *j = ctx;
  const int64_t n = j->cols;
  for (int64_t row = begin; row < end; row++) {
    const float *p = j->p + row * n;
    const float *g = j->g + row * n;
    float *out = j->out + row * n;
    double dot = 0;
    for (int64_t i = 0; i < n; i++) dot += (double)g[i] * (double)p[i];
    for (int64_t i = 0; i < n; i++)
      out[i] = (float)((double)p[i] * ((double)g[i] - dot));
  }
}

/* out = p * (g - rowsum(g * p)) over `rows` rows of `cols`; out may be g. */
void cufit_softmax_grad(const float *p, const float *g, float *out,
                        int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  struct softmax_grad_job j = {p, g, out, cols};
  int64_t grain = GRAIN / cols;
  parallel_for(softmax_grad_range, &j, rows, grain < 1 ? 1 : grain);
}

/* ------------------------------------------------------------- softmax */

/*
 * exp(a) in float32 for a in [-87, 0]: a = k ln 2 + r, |r| <= ln 2 / 2, a
 * degree-7 Taylor polynomial (truncation below 6e-9 relative), 2^k in the
 * exponent bits. Below -87 the caller substitutes 0.
 */
static inline float expf_neg(float a) {
  const float shifter = 0x1.8p23f;
  float t = a * 1.44269504f + shifter;
  float k = t - shifter;
  float r = (a - k * 0x1.62e400p-1f) - k * 0x1.7f7d1cp-20f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* Below this, exp(a) is under the smallest normal float32: taken as 0. */
static const float EXPF_FLOOR = -87.0f;

VECTOR_CLONES
static float row_max(const float *x, int64_t n) {
  float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
  for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
  float best = m[0];
  for (int j = 1; j < 8; j++) best = m[j] > best ? m[j] : best;
  return best;
}

/* y = exp(x - max), vectorized; returns nothing (the sum is taken apart). */
VECTOR_CLONES
static void exp_shifted(const float *x, float max, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float a = x[i] - max;
    float v = expf_neg(a < EXPF_FLOOR ? EXPF_FLOOR : a);
    /* NaN in (a NaN input, or +inf - +inf) stays NaN, as in PyTorch. */
    y[i] = a < EXPF_FLOOR ? 0.0f : (a == a ? v : a);
  }
}

VECTOR_CLONES
static double row_sum(const float *y, int64_t n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += y[i + j];
  for (; i < n; i++) s[0] += y[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

VECTOR_CLONES
static void scale_row(float *y, float f, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] *= f;
}

struct softmax_job {
  const float *x;
  float *y;
  int64_t cols;
};

static void softmax_range(const void *ctx, int64_t begin, int64_t end) {
  const struct softmax_job *j = ctx;
  const int64_t n = j->cols;
  for (int64_t row = begin; row < end; row++) {
    const float *x = j->x + row * n;
    float *y = j->y + row * n;
    float max = row_max(x, n);
    /* A row of -inf gives NaN (0 / 0), as PyTorch; so does a NaN. */
    if (max == -INFINITY) max = 0;
    exp_shifted(x, max, y, n);
    scale_row(y, (float)(1.0 / row_sum(y, n)), n);
  }
}

/* y = softmax(x) over the last axis: `rows` rows of `cols`; y may be x. */
void cufit_softmax(const float *x, float *y, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  struct softmax_job j = {x, y, cols};
  int64_t grain = GRAIN / cols;
  parallel_for(softmax_range, &j, rows, grain < 1 ? 1 : grain);
}

/* --------------------------------------------------------- gather rows */

struct gather_job {
  const float *src;
  float *dst;
  const double *offsets;
  int64_t len;
};

static void gather_range(const void *ctx, int64_t begin, int64_t end) {
  const struct gather_job *j = ctx;
  for (int64_t r = begin; r < end; r++)
    memcpy(j->dst + r * j->len, j->src + (int64_t)j->offsets[r],
           (size_t)j->len * sizeof(float));
}

/*
 * dst[r * len .. (r + 1) * len) = src[offsets[r] .. offsets[r] + len) for
 * r < rows: the copies of a transpose that keeps the last axis, or of a
 * slice. Offsets are whole numbers as doubles (exact below 2^53). dst must
 * not overlap src. Returns 0, copying nothing, when a row would reach
 * outside src's `src_len` floats (or an offset is not a whole number).
 */
int32_t cufit_gather_rows(const float *src, int64_t src_len, float *dst,
                          const double *offsets, int64_t rows, int64_t len) {
  if (len <= 0 || rows <= 0) return 1;
  for (int64_t r = 0; r < rows; r++) {
    double o = offsets[r];
    if (!(o >= 0 && o + (double)len <= (double)src_len) || o != (int64_t)o)
      return 0;
  }
  struct gather_job j = {src, dst, offsets, len};
  int64_t grain = GRAIN / len;
  parallel_for(gather_range, &j, rows, grain < 1 ? 1 : grain);
  return 1;
}

/* ------------------------------------------------- binary, element-wise */

struct binary_job {
  const float *a, *b;
  float *out;
  int64_t b_len; /* n: same shape; else a row of b_len, repeated */
  int32_t op;
};

VECTOR_CLONES
static void binary_loop(int32_t op, const float *a, const float *b, float *o,
                        int64_t n) {
  if (op == 0)
    for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i];
  else if (op == 1)
    for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
  else
    for (int64_t i = 0; i < n; i++) o[i] = a[i] - b[i];
}

static void binary_range(const void *ctx, int64_t begin, int64_t end) {
  const struct binary_job *j = ctx;
  if (j->b_len == 0) { /* same shape: [begin, end) are values */
    binary_loop(j->op, j->a + begin, j->b + begin, j->out + begin,
                end - begin);
    return;
  }
  const int64_t n = j->b_len; /* [begin, end) are rows */
  for (int64_t r = begin; r < end; r++)
    binary_loop(j->op, j->a + r * n, j->b, j->out + r * n, n);
}

/*
 * out = a op b over n values, op 0: *, 1: +, 2: -; b holds n values, or a
 * row of b_len (dividing n) repeated. out may be a or b. Returns 0 (nothing
 * done) for an unknown op or a b_len that does not divide n.
 */
int32_t cufit_binary(int32_t op, const float *a, const float *b, float *out,
                     int64_t n, int64_t b_len) {
  if (op < 0 || op > 2 || b_len <= 0 || n % b_len != 0) return 0;
  if (n == 0) return 1;
  if (b_len == n) {
    struct binary_job j = {a, b, out, 0, op};
    parallel_for(binary_range, &j, n, GRAIN);
  } else {
    struct binary_job j = {a, b, out, b_len, op};
    int64_t grain = GRAIN / b_len;
    parallel_for(binary_range, &j, n / b_len, grain < 1 ? 1 : grain);
  }
  return 1;
}

/* ----------------------------------------------------------- LayerNorm */

/* The sum of x[0..n) in double, four interleaved partial sums. */
static inline double sum4(const float *x, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i];
    s1 += x[i + 1];
    s2 += x[i + 2];
    s3 += x[i + 3];
  }
  for (; i < n; i++) s0 += x[i];
  return (s0 + s1) + (s2 + s3);
}

struct layer_norm_job {
  const float *x, *w, *b;
  float *y, *xhat, *rstd;
  int64_t cols;
  double eps;
};

static void layer_norm_range(const void *ctx, int64_t begin, int64_t end) {
  const struct layer_norm_job *j = ctx;
  const int64_t n = j->cols;
  for (int64_t row = begin; row < end; row++) {
    const float *x = j->x + row * n;
    const double mean = sum4(x, n) / (double)n;
    double q0 = 0, q1 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const double d0 = x[i] - mean, d1 = x[i + 1] - mean;
      q0 += d0 * d0;
      q1 += d1 * d1;
    }
    for (; i < n; i++) q0 += (x[i] - mean) * (x[i] - mean);
    const double r = 1.0 / sqrt((q0 + q1) / (double)n + j->eps);
    if (j->rstd) j->rstd[row] = (float)r;
    float *xhat = j->xhat ? j->xhat + row * n : NULL;
    float *y = j->y + row * n;
    for (i = 0; i < n; i++) {
      const float h = (float)((x[i] - mean) * r);
      if (xhat) xhat[i] = h;
      y[i] = h * j->w[i] + j->b[i]; /* float32, as tfjs's mul then add */
    }
  }
}

/*
 * y = xhat * w + b with xhat = (x - mean) / sqrt(var + eps) over the last
 * axis (biased variance, as torch), for `rows` rows of `cols`. xhat (rows x
 * cols) and rstd (rows) are written when not NULL, for the backward.
 */
void cufit_layer_norm(const float *x, const float *w, const float *b,
                      float *y, float *xhat, float *rstd, int64_t rows,
                      int64_t cols, double eps) {
  if (cols <= 0) return;
  struct layer_norm_job j = {x, w, b, y, xhat, rstd, cols, eps};
  int64_t grain = GRAIN / cols;
  parallel_for(layer_norm_range, &j, rows, grain < 1 ? 1 : grain);
}

struct layer_norm_grad_job {
  const float *dy, *xhat, *rstd, *w, *residual;
  float *dx;
  int64_t cols;
};

static void layer_norm_grad_range(const void *ctx, int64_t begin,
                                  int64_t end) {
  const struct layer_norm_grad_job *j = ctx;
  const int64_t n = j->cols;
  for (int64_t row = begin; row < end; row++) {
    const float *dy = j->dy + row * n;
    const float *xhat = j->xhat + row * n;
    double mg0 = 0, mg1 = 0, mgx0 = 0, mgx1 = 0;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
      const double g0 = (double)dy[i] * j->w[i];
      const double g1 = (double)dy[i + 1] * j->w[i + 1];
      mg0 += g0;
      mg1 += g1;
      mgx0 += g0 * xhat[i];
      mgx1 += g1 * xhat[i + 1];
    }
    for (; i < n; i++) {
      const double g = (double)dy[i] * j->w[i];
      mg0 += g;
      mgx0 += g * xhat[i];
    }
    const double mg = (mg0 + mg1) / (double)n;
    const double mgx = (mgx0 + mgx1) / (double)n;
    const double r = j->rstd[row];
    float *dx = j->dx + row * n;
    const float *res = j->residual ? j->residual + row * n : NULL;
    for (i = 0; i < n; i++) {
      const double g = (double)dy[i] * j->w[i];
      const float v = (float)((g - mg - xhat[i] * mgx) * r);
      dx[i] = res ? res[i] + v : v;
    }
  }
}

/*
 * The input gradient of cufit_layer_norm from the output gradient dy and
 * the forward's xhat and rstd: rstd * (g - mean(g) - xhat * mean(g xhat))
 * with g = dy * w, plus `residual` (float32 add) when not NULL.
 */
void cufit_layer_norm_grad(const float *dy, const float *xhat,
                           const float *rstd, const float *w,
                           const float *residual, float *dx, int64_t rows,
                           int64_t cols) {
  if (cols <= 0) return;
  struct layer_norm_grad_job j = {dy, xhat, rstd, w, residual, dx, cols};
  int64_t grain = GRAIN / cols;
  parallel_for(layer_norm_grad_range, &j, rows, grain < 1 ? 1 : grain);
}

/* ------------------------------------------------------- batched sgemm */

typedef void (*sgemm_fn)(int order, int trans_a, int trans_b, int m, int n,
                         int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c,
                         int ldc);

struct sgemm_job {
  sgemm_fn sgemm;
  int trans_a, trans_b, m, n, k;
  const float *a, *b;
  float *c;
  const int32_t *a_index, *b_index;
  float beta;
};

static void sgemm_range(const void *ctx, int64_t begin, int64_t end) {
  const struct sgemm_job *j = ctx;
  const int64_t a_size = (int64_t)j->m * j->k;
  const int64_t b_size = (int64_t)j->k * j->n;
  const int64_t c_size = (int64_t)j->m * j->n;
  const int lda = j->trans_a ? j->m : j->k;
  const int ldb = j->trans_b ? j->k : j->n;
  for (int64_t i = begin; i < end; i++) {
    j->sgemm(101 /* row major */, j->trans_a ? 112 : 111,
               j->trans_b ? 112 : 111, j->m, j->n, j->k, 1.0f,
               j->a + j->a_index[i] * a_size, lda > 1 ? lda : 1,
               j->b + j->b_index[i] * b_size, ldb > 1 ? ldb : 1, j->beta,
               j->c + i * c_size, j->n > 1 ? j->n : 1);
  }
}

/*
 * C[i] = op(A[a_index[i]]) @ op(B[b_index[i]]) + beta C[i] for i < batch,
 * row-major, matrices packed one after another, with `sgemm` (a CBLAS
 * cblas_sgemm). Each product runs on one thread: set OpenBLAS to one thread
 * around this call. Returns 0 when `sgemm` is NULL (nothing is computed).
 */
int32_t cufit_sgemm_batch(sgemm_fn sgemm, int32_t trans_a, int32_t trans_b,
                          int32_t m, int32_t n, int32_t k, const float *a,
                          const float *b, float *c, const int32_t *a_index,
                          const int32_t *b_index, int32_t batch, float beta) {
  if (!sgemm) return 0;
  struct sgemm_job j = {sgemm, trans_a, trans_b, m, n, k, a,
                        b, c, a_index, b_index, beta};
  parallel_for(sgemm_range, &j, batch, 1);
  return 1;
}
