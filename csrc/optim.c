/* Adam, applied only to the rows a batch touched.
 *
 * Rows no sample touched keep their moments as they were (lazy Adam: their
 * moments are not decayed), which is what makes a step cost O(active set)
 * rather than O(model). The bias correction belongs to the global step and
 * is folded into the learning rate before the call.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

KERNEL void adam_step(float *w, float *m, float *v, const float *g, int64_t n,
                      const bolt_adam *a)
{
    const float b1 = a->beta1, b2 = a->beta2, eps = a->epsilon, lr = a->lr;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * mi / (sqrtf(vi) + eps);
    }
}

/* Where a finished gradient row goes: an Adam step on the layer, or (for
 * gradient checks) a copy into caller-provided arrays. */
static void sink_row(const row_sink *s, int64_t r, const float *g, float gb)
{
    bolt_layer *l = s->layer;
    const int64_t n = l->cols;
    if (s->adam) {
        adam_step(l->w + r * n, l->mw + r * n, l->vw + r * n, g, n, s->adam);
        if (s->row_bias)
            adam_step(l->b + r, l->mb + r, l->vb + r, &gb, 1, s->adam);
    } else {
        for (int64_t j = 0; j < n; j++)
            s->grad_w[r * n + j] = g[j];
        if (s->row_bias)
            s->grad_b[r] = gb;
    }
}

/* The rows an Adam step on row r will read and write. */
static void sink_prefetch(const row_sink *s, int64_t r)
{
    const bolt_layer *l = s->layer;
    if (!s->adam)
        return;
    prefetch_floats(l->w + r * l->cols, l->cols);
    prefetch_floats(l->mw + r * l->cols, l->cols);
    prefetch_floats(l->vw + r * l->cols, l->cols);
}

void sink_bias(const row_sink *s, const float *gb)
{
    bolt_layer *l = s->layer;
    if (s->adam)
        adam_step(l->b, l->mb, l->vb, gb, l->bias_len, s->adam);
    else
        for (int64_t j = 0; j < l->bias_len; j++)
            s->grad_b[j] = gb[j];
}

int rowindex_alloc(row_index *ix, int64_t max_rows, int64_t max_entries)
{
    ix->slot = malloc((size_t)max_rows * sizeof(int32_t));
    ix->touched = malloc((size_t)max_entries * sizeof(int32_t));
    ix->start = malloc((size_t)(max_entries + 1) * sizeof(int64_t));
    ix->sample = malloc((size_t)max_entries * sizeof(int32_t));
    ix->value = malloc((size_t)max_entries * sizeof(float));
    ix->n_touched = ix->n_entries = 0;
    if (!ix->slot || !ix->touched || !ix->start || !ix->sample || !ix->value) {
        rowindex_free(ix);
        return BOLT_ENOMEM;
    }
    for (int64_t i = 0; i < max_rows; i++)
        ix->slot[i] = -1;
    return BOLT_OK;
}

void rowindex_free(row_index *ix)
{
    free(ix->slot);
    free(ix->touched);
    free(ix->start);
    free(ix->sample);
    free(ix->value);
    memset(ix, 0, sizeof *ix);
}

/* Counting sort of the batch's (row, sample, value) entries by row. Sample
 * s owns entries begin[s] .. begin[s] + count[s] of rows/vals. Entries of a
 * row keep sample order, so the sums below do not depend on thread count. */
void rowindex_build(row_index *ix, int64_t n_samples, const int64_t *begin,
                    const int32_t *count, const int32_t *rows,
                    const float *vals)
{
    int64_t nt = 0, ne = 0;
    for (int64_t s = 0; s < n_samples; s++) {
        for (int64_t e = begin[s]; e < begin[s] + count[s]; e++) {
            int32_t r = rows[e];
            if (ix->slot[r] < 0) {
                ix->slot[r] = (int32_t)nt;
                ix->touched[nt] = r;
                ix->start[++nt] = 0;
            }
            ix->start[ix->slot[r] + 1]++;
            ne++;
        }
    }
    ix->start[0] = 0;
    for (int64_t t = 0; t < nt; t++)
        ix->start[t + 1] += ix->start[t];
    /* start[t] advances while filling and ends where start[t + 1] began */
    for (int64_t s = 0; s < n_samples; s++) {
        for (int64_t e = begin[s]; e < begin[s] + count[s]; e++) {
            int64_t p = ix->start[ix->slot[rows[e]]]++;
            ix->sample[p] = (int32_t)s;
            ix->value[p] = vals[e];
        }
    }
    for (int64_t t = nt; t > 0; t--)
        ix->start[t] = ix->start[t - 1];
    ix->start[0] = 0;
    for (int64_t t = 0; t < nt; t++)
        ix->slot[ix->touched[t]] = -1;
    ix->n_touched = nt;
    ix->n_entries = ne;
}

/* Row r's gradient is sum over its entries of value * vecs[sample]. */
int update_indexed_rows(const row_index *ix, const float *vecs, int64_t dim,
                        const row_sink *sink, int32_t n_threads)
{
    float *buf = malloc((size_t)n_threads * (size_t)dim * sizeof(float));
    if (!buf)
        return bolt_fail(BOLT_ENOMEM, "out of memory for gradient buffers");
#pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads)
    for (int64_t t = 0; t < ix->n_touched; t++) {
        float *g = buf + (int64_t)THREAD_ID() * dim;
        float gb = 0.0f;
        if (t + PREFETCH_ROWS < ix->n_touched)
            sink_prefetch(sink, ix->touched[t + PREFETCH_ROWS]);
        memset(g, 0, (size_t)dim * sizeof(float));
        for (int64_t p = ix->start[t]; p < ix->start[t + 1]; p++) {
            simd_axpy(ix->value[p], vecs + (int64_t)ix->sample[p] * dim, g, dim);
            gb += ix->value[p];
        }
        sink_row(sink, ix->touched[t], g, gb);
    }
    free(buf);
    return BOLT_OK;
}

/* Every row r of the layer: gradient sum over samples of
 * coef[s * n_rows + r] * vecs[s]. */
int update_all_rows(int64_t n_samples, const float *coef, const float *vecs,
                    const row_sink *sink, int32_t n_threads)
{
    const int64_t n_rows = sink->layer->rows, dim = sink->layer->cols;
    float *buf = malloc((size_t)n_threads * (size_t)dim * sizeof(float));
    if (!buf)
        return bolt_fail(BOLT_ENOMEM, "out of memory for gradient buffers");
#pragma omp parallel for schedule(dynamic, 4) num_threads(n_threads)
    for (int64_t r = 0; r < n_rows; r++) {
        float *g = buf + (int64_t)THREAD_ID() * dim;
        float gb = 0.0f;
        memset(g, 0, (size_t)dim * sizeof(float));
        for (int64_t s = 0; s < n_samples; s++) {
            float c = coef[s * n_rows + r];
            if (c != 0.0f) {
                simd_axpy(c, vecs + s * dim, g, dim);
                gb += c;
            }
        }
        sink_row(sink, r, g, gb);
    }
    free(buf);
    return BOLT_OK;
}
