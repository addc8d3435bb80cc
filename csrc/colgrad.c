/* Column-sparse gradient gathering, for the layers next to a sparse hidden
 * layer (issue 36): the input layer's rows (one per feature) and the output
 * layer's rows (one per output) are touched by a sample only at the columns
 * of its active hidden units. A row takes an Adam step on those columns
 * alone, the way update_indexed_rows (grad.c) steps only the rows a batch
 * touched: lazy Adam, one level finer. Stepping whole rows would cost
 * every touched row's full width and lose the saving of the sparse layer.
 *
 * Entries of a row are summed in sample order (the row index keeps it), and
 * every (row, column) belongs to one thread, so the result is the same at
 * any thread count.
 */
#include "network.h"

#include <math.h>
#include <string.h>

void colbufs_layout(arena *a, col_bufs *cb, int64_t width, int64_t nt)
{
    cb->width = width;
    cb->g = arena_zero(a, PART_BUFFERS, nt * width, sizeof(float));
    cb->mark = arena_zero(a, PART_BUFFERS, nt * width, 1);
    cb->cols = arena_take(a, PART_BUFFERS, nt * width, sizeof(int32_t));
}

/* adam_step (optim.c) for one entry */
static inline void adam_one(float *w, float *m, float *v, float g, const bolt_adam *a)
{
    const float mi = a->beta1 * *m + (1.0f - a->beta1) * g;
    const float vi = a->beta2 * *v + (1.0f - a->beta2) * g * g;
    *m = mi;
    *v = vi;
    *w -= a->lr * mi / (sqrtf(vi) + a->epsilon);
}

/* Hands row r's n touched columns to the sink and leaves g and mark zero. */
static void sink_cols(const row_sink *s, int64_t r, float *g, uint8_t *mark,
                      const int32_t *cols, int64_t n, float gb)
{
    bolt_layer *l = s->layer;
    const int64_t W = l->cols, at = r * W;
    if (s->adam) {
        l->changed[r] = 1; /* one thread per row */
        for (int64_t t = 0; t < n; t++) {
            const int32_t c = cols[t];
            adam_one(l->w + at + c, l->mw + at + c, l->vw + at + c, g[c], s->adam);
        }
        if (s->row_bias)
            adam_one(l->b + r, l->mb + r, l->vb + r, gb, s->adam);
    } else {
        for (int64_t t = 0; t < n; t++)
            s->grad_w[at + cols[t]] = g[cols[t]];
        if (s->row_bias)
            s->grad_b[r] = gb;
    }
    for (int64_t t = 0; t < n; t++) {
        g[cols[t]] = 0.0f;
        mark[cols[t]] = 0;
    }
}

/* Adds v times sample vector (ids, vals) of k entries into g; zero entries
 * touch nothing (a ReLU unit that was off passes no gradient). */
static int64_t add_sparse(float *g, uint8_t *mark, int32_t *cols, int64_t n, float v,
                          const int32_t *ids, const float *vals, int32_t k)
{
    for (int32_t i = 0; i < k; i++) {
        if (vals[i] == 0.0f)
            continue;
        const int32_t c = ids[i];
        g[c] += v * vals[i];
        if (!mark[c]) {
            mark[c] = 1;
            cols[n++] = c;
        }
    }
    return n;
}

void update_indexed_cols(const row_index *ix, const int32_t *ids, const float *vals,
                         int32_t k, const row_sink *sink, const col_bufs *cb,
                         int32_t n_threads)
{
    const int64_t nt = ix->n_touched, W = cb->width;
    (void)n_threads; /* without OpenMP */
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t team = TEAM_SIZE(), me = THREAD_ID();
        const int64_t lo = nt * me / team, hi = nt * (me + 1) / team;
        float *g = cb->g + me * W;
        uint8_t *mark = cb->mark + me * W;
        int32_t *cols = cb->cols + me * W;
        for (int64_t t = lo; t < hi; t++) {
            float gb = 0.0f;
            int64_t n = 0;
            for (int64_t c = 0; c < ix->n_runs; c++) {
                const int64_t p0 = ix->start[c * nt + t], p1 = ix->start[c * nt + t + 1];
                for (int64_t p = p0; p < p1; p++) {
                    const int64_t s = ix->sample[p];
                    const float v = ix->value[p];
                    gb += v;
                    n = add_sparse(g, mark, cols, n, v, ids + s * k, vals + s * k, k);
                }
            }
            sink_cols(sink, ix->touched[t], g, mark, cols, n, gb);
        }
    }
}

void update_sparse_bias(int64_t n_samples, const int32_t *ids, const float *vals,
                        int32_t k, const row_sink *sink, const col_bufs *cb)
{
    bolt_layer *l = sink->layer;
    float *g = cb->g;
    uint8_t *mark = cb->mark;
    int32_t *cols = cb->cols;
    int64_t n = 0;
    for (int64_t s = 0; s < n_samples; s++)
        n = add_sparse(g, mark, cols, n, 1.0f, ids + s * k, vals + s * k, k);
    for (int64_t t = 0; t < n; t++) {
        const int32_t c = cols[t];
        if (sink->adam)
            adam_one(l->b + c, l->mb + c, l->vb + c, g[c], sink->adam);
        else
            sink->grad_b[c] = g[c];
        g[c] = 0.0f;
        mark[c] = 0;
    }
}
