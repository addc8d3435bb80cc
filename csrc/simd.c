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
