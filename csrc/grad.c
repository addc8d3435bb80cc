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
PREFETCH_FN void sink_prefetch(const row_sink *s, int64_t r)
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

/* Runs of samples rowindex_build indexes in parallel. Each costs a count
 * and a start per possible slot and a bit per row, so many-core machines
 * index with this many threads rather than all. */
#define INDEX_RUNS 8

void rowindex_layout(row_index *ix, arena *a, int64_t max_rows,
                     int64_t max_entries, int32_t n_threads)
{
    const int64_t slots = max_rows < max_entries ? max_rows : max_entries;
    ix->max_rows = max_rows;
    ix->max_slots = slots;
    ix->max_runs = n_threads < INDEX_RUNS ? (n_threads > 0 ? n_threads : 1) : INDEX_RUNS;
    ix->n_words = (max_rows + 63) / 64;
    ix->slot = arena_take(a, PART_BUFFERS, max_rows, sizeof(int32_t));
    ix->touched = arena_take(a, PART_BUFFERS, slots, sizeof(int32_t));
    ix->start = arena_take(a, PART_BUFFERS, ix->max_runs * slots + 1, sizeof(int64_t));
    ix->sample = arena_take(a, PART_BUFFERS, max_entries, sizeof(int32_t));
    ix->value = arena_take(a, PART_BUFFERS, max_entries, sizeof(float));
    ix->entry_slot = arena_take(a, PART_BUFFERS, max_entries, sizeof(int32_t));
    ix->run_count = arena_zero(a, PART_BUFFERS, ix->max_runs * slots, sizeof(int64_t));
    ix->seen = arena_zero(a, PART_BUFFERS, ix->max_runs * ix->n_words, sizeof(uint64_t));
    ix->n_touched = ix->n_entries = 0;
    ix->n_runs = 1;
}

/* Counting sort of the batch's (row, sample, value) entries by row. Sample
 * s owns entries begin[s] .. begin[s] + count[s] of rows/vals.
 *
 * The samples are cut into runs, one per thread, and nothing one run writes
 * shares a cache line with another's except at the edges: each run marks
 * the rows it saw in a bitmap of its own; the union of the bitmaps, split by
 * words, numbers the rows in row order; each run counts its entries per row
 * and then writes them to a region of its own (run-major: all of run 0's
 * rows, then run 1's). A first version claimed rows with a compare-and-swap
 * and wrote the runs of a row next to each other: the claims and the lines
 * both threads wrote took most of its time and two threads were no faster
 * than one. Within a run entries keep sample order and the runs are
 * consecutive samples, so reading a row's ranges run by run visits its
 * entries in sample order whatever the number of runs, and the sums do not
 * depend on the thread count. */
/* A batch's entries as rowindex_build reads them, and its runs. */
typedef struct {
    int64_t n_samples;
    const int64_t *begin;
    const int32_t *count;
    const int32_t *rows;
    const float *vals;
    int32_t runs;
} batch_entries;

/* Samples s0 .. s1 of run c. */
static void run_samples(const batch_entries *b, int32_t c, int64_t *s0, int64_t *s1)
{
    *s0 = b->n_samples * c / b->runs;
    *s1 = b->n_samples * (c + 1) / b->runs;
}

/* Run c marks the rows its entries touch in its own bitmap. */
static void mark_run(row_index *ix, const batch_entries *b, int32_t c)
{
    uint64_t *bits = ix->seen + c * ix->n_words;
    int64_t s0, s1;
    run_samples(b, c, &s0, &s1);
    for (int64_t s = s0; s < s1; s++)
        for (int64_t e = b->begin[s]; e < b->begin[s] + b->count[s]; e++)
            bits[b->rows[e] >> 6] |= (uint64_t)1 << (b->rows[e] & 63);
}

/* Rows marked by any run in words w0 .. w1. */
static int64_t count_marked(const row_index *ix, int32_t runs, int64_t w0, int64_t w1)
{
    int64_t n = 0;
    for (int64_t w = w0; w < w1; w++) {
        uint64_t m = 0;
        for (int32_t c = 0; c < runs; c++)
            m |= ix->seen[c * ix->n_words + w];
        n += __builtin_popcountll(m);
    }
    return n;
}

/* Numbers the rows marked in words w0 .. w1 from k on, in row order, and
 * clears those words of every bitmap for the next batch. */
static void number_marked(row_index *ix, int32_t runs, int64_t w0, int64_t w1, int64_t k)
{
    for (int64_t w = w0; w < w1; w++) {
        uint64_t m = 0;
        for (int32_t c = 0; c < runs; c++) {
            m |= ix->seen[c * ix->n_words + w];
            ix->seen[c * ix->n_words + w] = 0;
        }
        for (; m; m &= m - 1) {
            const int32_t r = (int32_t)(w * 64 + __builtin_ctzll(m));
            ix->slot[r] = (int32_t)k;
            ix->touched[k++] = r;
        }
    }
}

/* Run c counts its entries per numbered row; returns how many it has. */
static int64_t count_run(row_index *ix, const batch_entries *b, int32_t c)
{
    int64_t *cnt = ix->run_count + c * ix->max_slots, s0, s1, n = 0;
    run_samples(b, c, &s0, &s1);
    for (int64_t s = s0; s < s1; s++)
        for (int64_t e = b->begin[s]; e < b->begin[s] + b->count[s]; e++) {
            const int32_t t = ix->slot[b->rows[e]];
            ix->entry_slot[e] = t;
            cnt[t]++;
            n++;
        }
    return n;
}

/* Run-major regions: every row's entries of run 0, then of run 1, ...;
 * each run's counts become the next free place of each of its rows. */
static void lay_out_runs(row_index *ix, int32_t runs, int64_t nt)
{
    int64_t at = 0;
    for (int32_t c = 0; c < runs; c++) {
        int64_t *cnt = ix->run_count + c * ix->max_slots;
        for (int64_t t = 0; t < nt; t++) {
            const int64_t m = cnt[t];
            ix->start[c * nt + t] = cnt[t] = at;
            at += m;
        }
    }
    ix->start[runs * nt] = at;
}

/* Run c writes its entries into its region, then zeroes its counts. */
static void fill_run(row_index *ix, const batch_entries *b, int32_t c, int64_t nt)
{
    int64_t *pos = ix->run_count + c * ix->max_slots, s0, s1;
    run_samples(b, c, &s0, &s1);
    for (int64_t s = s0; s < s1; s++)
        for (int64_t e = b->begin[s]; e < b->begin[s] + b->count[s]; e++) {
            const int64_t p = pos[ix->entry_slot[e]]++;
            ix->sample[p] = (int32_t)s;
            ix->value[p] = b->vals[e];
        }
    memset(pos, 0, (size_t)nt * sizeof(int64_t));
}

void rowindex_build(row_index *ix, int64_t n_samples, const int64_t *begin,
                    const int32_t *count, const int32_t *rows,
                    const float *vals, int32_t n_threads)
{
    const int32_t runs = n_threads < ix->max_runs ? (n_threads > 0 ? n_threads : 1)
                                                  : ix->max_runs;
    const batch_entries b = {n_samples, begin, count, rows, vals, runs};
    const int64_t words = ix->n_words;
    int64_t found[INDEX_RUNS + 1] = {0}; /* rows found per word range */
    int64_t nt = 0, ne = 0;
#pragma omp parallel num_threads(runs) reduction(+ : ne)
    {
        const int32_t id = THREAD_ID(), team = TEAM_SIZE();
        const int64_t w0 = words * id / team, w1 = words * (id + 1) / team;
        for (int32_t c = id; c < runs; c += team)
            mark_run(ix, &b, c);
#pragma omp barrier
        found[id + 1] = count_marked(ix, runs, w0, w1);
#pragma omp barrier
        int64_t k = 0;
        for (int32_t i = 0; i <= id; i++)
            k += found[i];
        number_marked(ix, runs, w0, w1, k);
#pragma omp barrier
        for (int32_t c = id; c < runs; c += team)
            ne += count_run(ix, &b, c);
#pragma omp barrier
#pragma omp single
        {
            for (int32_t i = 0; i < team; i++)
                nt += found[i + 1];
            lay_out_runs(ix, runs, nt);
        }
        for (int32_t c = id; c < runs; c += team)
            fill_run(ix, &b, c, nt);
    }
    ix->n_touched = nt;
    ix->n_entries = ne;
    ix->n_runs = runs;
}

/* Row r's gradient is sum over its entries of value * vecs[sample]. */
void update_indexed_rows(const row_index *ix, const float *vecs, int64_t dim,
                         const row_sink *sink, int32_t n_threads)
{
    float *buf = sink->buf;
    const int64_t nt = ix->n_touched;
    (void)n_threads; /* without OpenMP */
    /* One contiguous range of rows per thread, so the row each thread
     * prefetches is one it will update itself. Handing out chunks of 16
     * (dynamic) prefetched the other thread's rows at every chunk's end:
     * the output layer's Adam steps, memory-bound, scaled 1.5-1.7x from 1
     * to 2 threads, 1.7-1.8x now (100k classes, benchmarks/README.md). A
     * split weighted by the rows' entries was no better. */
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t team = TEAM_SIZE(), me = THREAD_ID();
        const int64_t lo = nt * me / team, hi = nt * (me + 1) / team;
        float *g = buf + me * dim;
        for (int64_t t = lo; t < hi; t++) {
            float gb = 0.0f;
            if (t + PREFETCH_ROWS < hi)
                sink_prefetch(sink, ix->touched[t + PREFETCH_ROWS]);
            memset(g, 0, (size_t)dim * sizeof(float));
            for (int64_t c = 0; c < ix->n_runs; c++) {
                const int64_t p0 = ix->start[c * nt + t], p1 = ix->start[c * nt + t + 1];
                simd_gather_sum(vecs, dim, ix->sample + p0, ix->value + p0, p1 - p0, g);
                for (int64_t p = p0; p < p1; p++)
                    gb += ix->value[p];
            }
            sink_row(sink, ix->touched[t], g, gb);
        }
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
