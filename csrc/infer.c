/* Inference: exact scores of every output, the top k of them, the top k
 * among the candidates the tables retrieve, and hidden embeddings.
 *
 * Nothing here writes to the network, so any number of threads may predict
 * with one model at once; each call brings its own buffers.
 */
#include "network.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Samples scored together against each weight row, so that a row is read
 * from memory once per block rather than once per sample. */
#define SAMPLE_BLOCK 16
#define ROW_CHUNK 1024

/* ------------------------------------------------------------------------ */
/* top k                                                                      */

typedef struct {
    float score;
    int32_t id;
} scored;

/* a ranks below b: lower score, or equal score and higher id */
static int worse(scored a, scored b)
{
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

/* Min-heap of the k best seen so far; heap[0] is the worst of them. */
static void heap_offer(scored *heap, int32_t *n, int32_t k, scored x)
{
    int32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && worse(x, heap[(i - 1) / 2])) {
            heap[i] = heap[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        heap[i] = x;
        return;
    }
    if (!worse(heap[0], x))
        return;
    i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && worse(heap[c + 1], heap[c]))
            c++;
        if (!worse(heap[c], x))
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = x;
}

static int by_rank(const void *pa, const void *pb)
{
    scored a = *(const scored *)pa, b = *(const scored *)pb;
    return worse(b, a) ? -1 : worse(a, b) ? 1 : 0;
}

/* A row's top k, best first; lse is the log-sum-exp of every logit the row
 * offered, so softmax scores are probabilities over all of them. */
static void emit_topk(scored *heap, int32_t n, int32_t k, int loss, double lse,
                      int32_t *ids, float *scores)
{
    qsort(heap, (size_t)n, sizeof(scored), by_rank);
    for (int32_t j = 0; j < k; j++) {
        if (j < n) {
            ids[j] = heap[j].id;
            /* unseen outputs score -inf, and lse may be -inf too */
            scores[j] = heap[j].score == -INFINITY ? 0.0f : output_prob(loss, heap[j].score, lse);
        } else {
            ids[j] = -1;
            scores[j] = 0.0f;
        }
    }
}

/* The top-k paths never hold a row's logits all at once, so they keep a
 * running log-sum-exp: max *m and sum *sum of exp(z - *m), rescaled when
 * the maximum moves; -inf adds nothing. */
static void lse_add(double *m, double *sum, float z)
{
    if (z == -INFINITY)
        return;
    if (z > *m) {
        *sum = *sum * exp(*m - (double)z) + 1.0;
        *m = z;
    } else {
        *sum += exp((double)z - *m);
    }
}

/* ------------------------------------------------------------------------ */
/* dense scoring                                                              */

/* Exact scores of every output for a block of samples: calls visit(i, r0,
 * z, n) with the logits z[0..n) of outputs r0 .. r0 + n of sample i. */
typedef void (*logit_visitor)(void *ctx, int i, int64_t r0, const float *z,
                              int64_t n);

/* hs: nb dense hidden vectors; or, with sids, nb k-sparse ones (a sparse
 * hidden layer: sids and hs hold hk ids and activations per sample), whose
 * logits cost hk gathers each instead of H multiplications. */
static void dense_logits(const bolt_network *net, const float *hs, const int32_t *sids,
                         int nb, float *zbuf, logit_visitor visit, void *ctx)
{
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    const int64_t C = out->rows, H = out->cols, k = net->hk;
    float dots[SAMPLE_BLOCK];
    for (int64_t r0 = 0; r0 < C; r0 += ROW_CHUNK) {
        const int64_t n = C - r0 < ROW_CHUNK ? C - r0 : ROW_CHUNK;
        for (int64_t r = 0; r < n; r++) {
            if (sids)
                for (int i = 0; i < nb; i++)
                    dots[i] = gather_dot(out->w + (r0 + r) * H, sids + i * k, hs + i * k,
                                         (int32_t)k);
            else
                simd_dot_many(out->w + (r0 + r) * H, hs, H, nb, dots);
            const int masked = unseen(net, r0 + r);
            for (int i = 0; i < nb; i++)
                zbuf[(int64_t)i * ROW_CHUNK + r] = masked ? -INFINITY : dots[i] + out->b[r0 + r];
        }
        for (int i = 0; i < nb; i++)
            visit(ctx, i, r0, zbuf + (int64_t)i * ROW_CHUNK, n);
    }
}

typedef struct {
    scored *heaps; /* SAMPLE_BLOCK x k */
    int32_t n[SAMPLE_BLOCK];
    double max[SAMPLE_BLOCK], sum[SAMPLE_BLOCK];
    int32_t k;
} topk_ctx;

static void topk_visit(void *vctx, int i, int64_t r0, const float *z, int64_t n)
{
    topk_ctx *ctx = vctx;
    scored *heap = ctx->heaps + (int64_t)i * ctx->k;
    double m = ctx->max[i], sum = ctx->sum[i];
    for (int64_t r = 0; r < n; r++) {
        scored x = {z[r], (int32_t)(r0 + r)};
        heap_offer(heap, &ctx->n[i], ctx->k, x);
        lse_add(&m, &sum, z[r]);
    }
    ctx->max[i] = m;
    ctx->sum[i] = sum;
}

typedef struct {
    float *out;
    int64_t first, C;
} scores_ctx;

static void scores_visit(void *vctx, int i, int64_t r0, const float *z, int64_t n)
{
    scores_ctx *ctx = vctx;
    memcpy(ctx->out + (ctx->first + i) * ctx->C + r0, z, (size_t)n * sizeof(float));
}

/* What a dense pass asks of one block of rows: the top k (k > 0) into ids
 * and scores, or every score into all_out. */
typedef struct {
    int32_t k, probabilities;
    int32_t *ids;
    float *scores, *all_out;
} dense_job;

typedef struct {
    float *hs, *hbuf, *zbuf;
    scored *heaps;
    int32_t *sids; /* a sparse hidden layer's active ids per sample */
} dense_bufs;

typedef struct {
    const bolt_network *net;
    int64_t nt, k;
} dense_dims;

static void dense_layout(arena *a, void *vbufs, const void *vdims)
{
    dense_bufs *b = vbufs;
    const dense_dims *d = vdims;
    const bolt_config *c = &d->net->cfg;
    const int64_t nt = d->nt;
    b->hs = arena_take(a, PART_BUFFERS, nt * SAMPLE_BLOCK * c->hidden_sizes[c->n_hidden - 1],
                       sizeof(float));
    b->hbuf = arena_take(a, PART_BUFFERS, nt * sum_width(c), sizeof(float));
    b->zbuf = arena_take(a, PART_BUFFERS, nt * SAMPLE_BLOCK * ROW_CHUNK, sizeof(float));
    b->heaps = arena_take(a, PART_BUFFERS, nt * SAMPLE_BLOCK * d->k, sizeof(scored));
    b->sids = arena_take(a, PART_BUFFERS, d->net->hsparse ? nt * SAMPLE_BLOCK * d->net->hk : 0,
                         sizeof(int32_t));
}

static void dense_block_topk(const bolt_network *net, const dense_job *job,
                             scored *heaps, const float *h, const int32_t *sids, float *zb,
                             int64_t first, int nb)
{
    const int32_t k = job->k;
    topk_ctx ctx;
    ctx.heaps = heaps;
    ctx.k = k;
    for (int i = 0; i < SAMPLE_BLOCK; i++) {
        ctx.n[i] = 0;
        ctx.max[i] = -INFINITY;
        ctx.sum[i] = 0.0;
    }
    dense_logits(net, h, sids, nb, zb, topk_visit, &ctx);
    for (int i = 0; i < nb; i++)
        emit_topk(ctx.heaps + (int64_t)i * k, ctx.n[i], k, net->cfg.loss,
                  ctx.max[i] + log(ctx.sum[i]), job->ids + (first + i) * k,
                  job->scores + (first + i) * k);
}

static void dense_block_scores(const bolt_network *net, const dense_job *job,
                               const float *h, const int32_t *sids, float *zb, int64_t first,
                               int nb)
{
    const int64_t C = net->cfg.n_outputs;
    const int loss = net->cfg.loss;
    scores_ctx ctx = {job->all_out, first, C};
    dense_logits(net, h, sids, nb, zb, scores_visit, &ctx);
    if (!job->probabilities)
        return;
    for (int i = 0; i < nb; i++) {
        float *z = job->all_out + (first + i) * C;
        const double lse = loss == BOLT_LOSS_SOFTMAX ? log_sum_exp(z, C) : 0.0;
        for (int64_t r = 0; r < C; r++)
            z[r] = output_prob(loss, z[r], lse);
    }
}

/* Runs the hidden layers for blocks of rows and scores each block exactly. */
static int dense_pass(const bolt_network *net, const bolt_csr *X, int32_t nt,
                      const dense_job *job)
{
    const int64_t H = net->width[net->cfg.n_hidden], sw = sum_width(&net->cfg);
    const int64_t n_blocks = (X->n_rows + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    dense_bufs b;
    const dense_dims dims = {net, nt, job->k};
    void *block;
    int rc = arena_build(dense_layout, &b, &dims, 0, &block, "prediction buffers");
    if (rc)
        return rc;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        const int tid = THREAD_ID();
        const int64_t first = blk * SAMPLE_BLOCK;
        const int nb = (int)(X->n_rows - first < SAMPLE_BLOCK ? X->n_rows - first : SAMPLE_BLOCK);
        float *h = b.hs + (int64_t)tid * SAMPLE_BLOCK * H;
        int32_t *sids = NULL;
        if (net->hsparse && !net->hexact) { /* active ids and values only */
            const int64_t k = net->hk;
            sids = b.sids + (int64_t)tid * SAMPLE_BLOCK * k;
            for (int i = 0; i < nb; i++) {
                int32_t *ids;
                float *a;
                hidden_infer(net, X, first + i, b.hbuf + tid * sw);
                hidden_last(net, b.hbuf + tid * sw, &ids, &a);
                memcpy(sids + i * k, ids, (size_t)k * sizeof(int32_t));
                memcpy(h + i * k, a, (size_t)k * sizeof(float));
            }
        } else {
            for (int i = 0; i < nb; i++)
                memcpy(h + i * H, hidden_infer(net, X, first + i, b.hbuf + tid * sw),
                       (size_t)H * sizeof(float));
        }
        float *zb = b.zbuf + (int64_t)tid * SAMPLE_BLOCK * ROW_CHUNK;
        if (job->k > 0)
            dense_block_topk(net, job, b.heaps + (int64_t)tid * SAMPLE_BLOCK * job->k, h, sids,
                             zb, first, nb);
        else
            dense_block_scores(net, job, h, sids, zb, first, nb);
    }
    free(block);
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* sparse scoring                                                             */

typedef struct {
    probe p;
    int32_t *cand, *hist;
    scored *heaps;
    float *hbuf;
} sparse_bufs;

typedef struct {
    const bolt_network *net;
    int64_t nt, k, cap;
} sparse_dims;

static void sparse_layout(arena *a, void *vbufs, const void *vdims)
{
    sparse_bufs *b = vbufs;
    const sparse_dims *d = vdims;
    const bolt_config *c = &d->net->cfg;
    probe_layout(a, &b->p, d->net, d->nt, d->nt);
    b->cand = arena_take(a, PART_BUFFERS, d->nt * d->cap, sizeof(int32_t));
    b->heaps = arena_take(a, PART_BUFFERS, d->nt * d->k, sizeof(scored));
    b->hbuf = arena_take(a, PART_BUFFERS, d->nt * sum_width(c), sizeof(float));
    b->hist = arena_take(a, PART_BUFFERS, d->nt * (c->hash_L + 2), sizeof(int32_t));
}

/* Scores the n candidates cd of hidden vector h into a top k. */
static void score_candidates(const bolt_network *net, const float *h, float *hbuf,
                             const int32_t *cd, int32_t n, scored *heap,
                             int32_t k, int32_t *ids, float *scores)
{
    int32_t *hid = NULL;
    float *ha = NULL;
    if (net->hsparse && !net->hexact) /* gathers over the active units */
        hidden_last(net, hbuf, &hid, &ha);
    const int64_t H = net->width[net->cfg.n_hidden];
    const bolt_layer *out = &net->layer[net->n_layers - 1];
    int32_t nh = 0;
    double m = -INFINITY, sum = 0.0;
    for (int32_t j = 0; j < n; j++) {
        if (j + PREFETCH_ROWS < n)
            prefetch_floats(out->w + (int64_t)cd[j + PREFETCH_ROWS] * H, H);
        const float *w = out->w + (int64_t)cd[j] * H;
        float z = unseen(net, cd[j]) ? -INFINITY
                  : (hid ? gather_dot(w, hid, ha, net->hk) : simd_dot(w, h, H)) + out->b[cd[j]];
        scored x = {z, cd[j]};
        heap_offer(heap, &nh, k, x);
        lse_add(&m, &sum, z);
    }
    emit_topk(heap, nh, k, net->cfg.loss, m + log(sum), ids, scores);
}

static int predict_sparse(const bolt_network *net, const bolt_csr *X, int32_t k,
                          int32_t keep, int32_t nt, int32_t *ids, float *scores)
{
    const int64_t sw = sum_width(&net->cfg), L = net->cfg.hash_L;
    int64_t cap = candidate_cap(net);
    cap = cap > k ? cap : k;
    sparse_bufs b;
    const sparse_dims dims = {net, nt, k, cap};
    void *block;
    int rc = arena_build(sparse_layout, &b, &dims, 0, &block, "prediction buffers");
    if (rc)
        return rc;
    if (keep > 0 && keep < k)
        keep = k;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
    for (int64_t i = 0; i < X->n_rows; i++) {
        const int tid = THREAD_ID();
        const probe p = probe_at(&b.p, net, tid, tid);
        const float *h = hidden_infer(net, X, i, b.hbuf + tid * sw);
        probe_hash(net, &p, h);
        int32_t *cd = b.cand + tid * cap;
        int32_t n = sparse_candidates(net, &p, cd, cap, k, keep, b.hist + tid * (L + 2));
        score_candidates(net, h, b.hbuf + tid * sw, cd, n, b.heaps + (int64_t)tid * k, k, ids + i * k,
                         scores + i * k);
    }
    free(block);
    return BOLT_OK;
}

/* ------------------------------------------------------------------------ */
/* entry points                                                               */

int bolt_predict_topk(const bolt_network *net, const bolt_csr *X, int32_t k,
                      int32_t candidates, int32_t n_threads, int32_t *ids,
                      float *scores)
{
    int rc;
    if ((rc = check_given("network X", (const void *[]){net, X}, 2)))
        return rc;
    if (k < 1 || k > net->cfg.n_outputs)
        return bolt_fail(BOLT_EINVAL, "k must be in [1, %d] (the number of outputs), got %d",
                         net->cfg.n_outputs, k);
    if ((rc = check_inference(net, X, n_threads)))
        return rc;
    if (X->n_rows == 0)
        return BOLT_OK;
    if ((rc = check_given("ids scores", (const void *[]){ids, scores}, 2)))
        return rc;
    if (candidates != 0 && net->sparse)
        return predict_sparse(net, X, k, candidates < 0 ? 0 : candidates, n_threads, ids,
                              scores);
    const dense_job job = {k, 0, ids, scores, NULL};
    return dense_pass(net, X, n_threads, &job);
}

/* The checks every dense-output entry point makes; *empty when X has no
 * rows, in which case out may be NULL. */
static int check_dense_call(const bolt_network *net, const bolt_csr *X,
                            int32_t n_threads, const void *out, int *empty)
{
    int rc;
    *empty = 0;
    if ((rc = check_given("network X", (const void *[]){net, X}, 2)) ||
        (rc = check_inference(net, X, n_threads)))
        return rc;
    *empty = X->n_rows == 0;
    return *empty ? BOLT_OK : check_given("out", (const void *[]){out}, 1);
}

int bolt_predict_scores(const bolt_network *net, const bolt_csr *X,
                        int32_t probabilities, int32_t n_threads, float *out)
{
    int empty, rc = check_dense_call(net, X, n_threads, out, &empty);
    if (rc || empty)
        return rc;
    const dense_job job = {0, probabilities, NULL, NULL, out};
    return dense_pass(net, X, n_threads, &job);
}

int bolt_embed(const bolt_network *net, const bolt_csr *X, int32_t n_threads,
               float *out)
{
    int empty, rc = check_dense_call(net, X, n_threads, out, &empty);
    if (rc || empty)
        return rc;
    float *hbuf = malloc((size_t)(n_threads * sum_width(&net->cfg)) * sizeof(float));
    if (!hbuf)
        return bolt_fail(BOLT_ENOMEM, "out of memory for embedding buffers");
    hidden_rows(net, X, NULL, X->n_rows, out, hbuf, n_threads);
    free(hbuf);
    return BOLT_OK;
}
