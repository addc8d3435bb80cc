/* Gradient gathering: the rows of a layer that a batch touched, and each
 * row's gradient summed from the samples that touched it.
 *
 * Its own file rather than part of optim.c (which is Adam alone) or
 * train.c (the passes over samples): it is phase 2 of a batch, parallel
 * over rows instead of samples, and it serves two sinks, an Adam step and
 * the dense arrays of bolt_gradient. Entries of a row are kept in sample
 * order, so the sums do not depend on thread count.
 */
#include "network.h"

#include <string.h>

/* Faults the pages under n floats at p in for writing. The moments start
 * as calloc's untouched pages: Adam reads them first, which maps the shared
 * zero page, and its write then has to flush the TLB of every thread of the
 * process (perf, a 100k-class fit at 2 threads: 0.9 CPU-s of those
 * interrupts). A locked or of zero is a write that changes nothing; bytes
 * may alias any object. Only this thread writes the row. */
static void touch_for_writing(float *p, int64_t n)
{
    unsigned char *c = (unsigned char *)p, *end = (unsigned char *)(p + n);
    for (; c < end; c += 4096)
        __atomic_fetch_or(c, (unsigned char)0, __ATOMIC_RELAXED);
    __atomic_fetch_or(end - 1, (unsigned char)0, __ATOMIC_RELAXED);
}

/* Where a finished gradient row goes: an Adam step on the layer, or (for
 * gradient checks) a copy into caller-provided arrays. */
static void sink_row(const row_sink *s, int64_t r, const float *g, float gb)
{
    bolt_layer *l = s->layer;
    const int64_t n = l->cols;
    if (s->adam) {
        /* one thread per row: no other thread writes this flag */
        l->changed[r] = 1;
        touch_for_writing(l->mw + r * n, n);
        touch_for_writing(l->vw + r * n, n);
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

void rowindex_layout(row_index *ix, arena *a, int64_t max_rows,
                     int64_t max_entries)
{
    ix->max_rows = max_rows;
    ix->slot = arena_take(a, PART_BUFFERS, max_rows, sizeof(int32_t));
    ix->touched = arena_take(a, PART_BUFFERS, max_entries, sizeof(int32_t));
    ix->start = arena_take(a, PART_BUFFERS, max_entries + 1, sizeof(int64_t));
    ix->sample = arena_take(a, PART_BUFFERS, max_entries, sizeof(int32_t));
    ix->value = arena_take(a, PART_BUFFERS, max_entries, sizeof(float));
    ix->n_touched = ix->n_entries = 0;
}

/* rowindex_build leaves every slot at -1 again, so this runs once. */
void rowindex_reset(row_index *ix)
{
    for (int64_t i = 0; i < ix->max_rows; i++)
        ix->slot[i] = -1;
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
void update_indexed_rows(const row_index *ix, const float *vecs, int64_t dim,
                         const row_sink *sink, int32_t n_threads)
{
    float *buf = sink->buf;
    (void)n_threads; /* without OpenMP */
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
}

/* Every row r of the layer: gradient sum over samples of
 * coef[s * n_rows + r] * vecs[s]. */
void update_all_rows(int64_t n_samples, const float *coef, const float *vecs,
                     const row_sink *sink, int32_t n_threads)
{
    const int64_t n_rows = sink->layer->rows, dim = sink->layer->cols;
    float *buf = sink->buf;
    (void)n_threads; /* without OpenMP */
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
}
