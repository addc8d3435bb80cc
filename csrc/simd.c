/* Vector kernels: the inner loops every layer spends its time in.
 *
 * They are written as plain loops the compiler vectorises. `omp simd`
 * permits reassociating the float reductions (only with -fopenmp or
 * -fopenmp-simd; otherwise the pragma is ignored and the loops stay scalar
 * but correct). On x86-64 with GCC and glibc each kernel is also cloned for
 * AVX2+FMA and picked at load time, so a wheel built without -march=native
 * still runs the wide version where the CPU has it.
 */
#include "network.h"


KERNEL float simd_dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

KERNEL void simd_axpy(float alpha, const float *x, float *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

/* y += sum over p < n of val[p] * (the dim floats at x + idx[p] * dim), each
 * element summed in p order exactly as n simd_axpy calls would. Blocks of
 * 64 elements keep their sums in eight 8-float registers across the list: the axpy form stores and reloads y once per term,
 * and those stores, not the arithmetic, were where its time went. */
#if defined(__GNUC__)
/* unaligned (aligned(4)); GCC lets vectors of float alias float */
typedef float f32x8 __attribute__((vector_size(32), aligned(4)));

KERNEL void simd_gather_sum(const float *x, int64_t dim, const int32_t *idx,
                            const float *val, int64_t n, float *y)
{
    int64_t j0 = 0;
    for (; j0 + 64 <= dim; j0 += 64) {
        f32x8 *yp = (f32x8 *)(y + j0);
        f32x8 s0 = yp[0], s1 = yp[1], s2 = yp[2], s3 = yp[3], s4 = yp[4], s5 = yp[5],
              s6 = yp[6], s7 = yp[7];
        for (int64_t p = 0; p < n; p++) {
            const float a = val[p];
            const f32x8 *xp = (const f32x8 *)(x + (int64_t)idx[p] * dim + j0);
            s0 += a * xp[0];
            s1 += a * xp[1];
            s2 += a * xp[2];
            s3 += a * xp[3];
            s4 += a * xp[4];
            s5 += a * xp[5];
            s6 += a * xp[6];
            s7 += a * xp[7];
        }
        yp[0] = s0;
        yp[1] = s1;
        yp[2] = s2;
        yp[3] = s3;
        yp[4] = s4;
        yp[5] = s5;
        yp[6] = s6;
        yp[7] = s7;
    }
    if (j0 < dim)
        for (int64_t p = 0; p < n; p++)
            simd_axpy(val[p], x + (int64_t)idx[p] * dim + j0, y + j0, dim - j0);
}
#else
void simd_gather_sum(const float *x, int64_t dim, const int32_t *idx,
                     const float *val, int64_t n, float *y)
{
    for (int64_t p = 0; p < n; p++)
        simd_axpy(val[p], x + (int64_t)idx[p] * dim, y, dim);
}
#endif

/* out[i] = dot(w, h + i * n) for the nh vectors stored one after another in
 * h: one weight row is read from memory once and reused from cache. */
KERNEL void simd_dot_many(const float *w, const float *h, int64_t n, int nh,
                          float *out)
{
    int i = 0;
    for (; i + 4 <= nh; i += 4) {
        const float *h0 = h + (int64_t)i * n, *h1 = h0 + n, *h2 = h1 + n,
                    *h3 = h2 + n;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int64_t j = 0; j < n; j++) {
            s0 += w[j] * h0[j];
            s1 += w[j] * h1[j];
            s2 += w[j] * h2[j];
            s3 += w[j] * h3[j];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < nh; i++)
        out[i] = simd_dot(w, h + (int64_t)i * n, n);
}
