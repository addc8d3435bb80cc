/* Training: the workspace of a call and the passes over a batch.
 *
 * A batch runs in two phases. Phase 1, parallel over samples: the forward
 * pass, the loss over the active set and the backward pass, keeping each
 * sample's activations and deltas. Phase 2, parallel over weight rows
 * (grad.c): every row a sample touched gathers its gradient from those
 * samples, in sample order, and takes its Adam step at once. No two threads
 * ever write the same memory, so there are no locks, no atomics, and the
 * result is the same whatever the thread count.
 */
#include "network.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t B, kmax, max_lab, max_nnz;
    int32_t nt;
    float *act[BOLT_MAX_HIDDEN];   /* B x width: ReLU outputs */
    float *delta[BOLT_MAX_HIDDEN]; /* B x width: dloss / dpre-activation */
    int32_t *out_ids;              /* B x kmax (sparse output) */
    float *out_val;                /* B x kmax, or B x C when dense */
    int64_t *out_begin;
    int32_t *out_n;
    double *loss;
    probe probes;                  /* keys per sample (B x L), the rest per thread */
    int32_t *missed;               /* B x max_lab labels the tables missed */
    int32_t *n_missed;
    float *scratch;                /* nt x 2 x max width */
    int32_t *label_pos;            /* nt x max_lab */
    int64_t *in_begin;
    int32_t *in_count, *in_rows;
    float *in_vals;
    float *grad;                   /* nt x max width: gradient rows */
    /* a sparse hidden layer: act[0] and delta[0] hold B x hk values of the
     * units hid (B x hk) names */
    int32_t *hid;
    hidden_probe hprobes;          /* per thread */
    float *hdense;                 /* nt x H zeros: a sample's scattered vector */
    col_bufs cb;
    row_index ix;
    void *block;
} workspace;

static void ws_dims(workspace *ws, const bolt_network *net, int64_t B,
                    int64_t max_lab, int64_t max_nnz, int32_t nt)
{
    const int64_t C = net->cfg.n_outputs;
    memset(ws, 0, sizeof *ws);
    ws->B = B;
    ws->nt = nt;
    ws->max_lab = max_lab;
    ws->max_nnz = max_nnz;
    const int64_t k = net->cfg.active_size > max_lab ? net->cfg.active_size : max_lab;
    ws->kmax = net->sparse ? (k < C ? k : C) : C;
}

/* Every buffer of a training call; sizes bolt_estimate_memory reports too. */
static void ws_layout(arena *a, void *vws, const void *vnet)
{
    workspace *ws = vws;
    const bolt_network *net = vnet;
    const bolt_config *c = &net->cfg;
    const int64_t B = ws->B, nt = ws->nt, mw = max_width(c), C = c->n_outputs;
    const int64_t lab = ws->max_lab > 0 ? ws->max_lab : 1;
    const int64_t nnz = ws->max_nnz > 0 ? ws->max_nnz : 1;
    const int P = PART_BUFFERS;
    for (int i = 0; i < c->n_hidden; i++) {
        const int64_t w = i == 0 && net->hsparse ? net->hk : net->width[i + 1];
        ws->act[i] = arena_take(a, P, B * w, sizeof(float));
        ws->delta[i] = arena_take(a, P, B * w, sizeof(float));
    }
    if (net->hsparse) {
        ws->hid = arena_take(a, P, B * net->hk, sizeof(int32_t));
        hprobe_layout(a, &ws->hprobes, net, nt);
        colbufs_layout(a, &ws->cb, net->width[1], net->hblock, nt);
        if (net->sparse)
            ws->hdense = arena_zero(a, P, nt * net->width[1], sizeof(float));
    }
    ws->out_val = arena_take(a, P, B * ws->kmax, sizeof(float));
    ws->out_begin = arena_take(a, P, B, sizeof(int64_t));
    ws->out_n = arena_take(a, P, B, sizeof(int32_t));
    ws->loss = arena_take(a, P, B, sizeof(double));
    ws->scratch = arena_take(a, P, nt * 2 * mw, sizeof(float));
    ws->label_pos = arena_take(a, P, nt * lab, sizeof(int32_t));
    ws->in_begin = arena_take(a, P, B, sizeof(int64_t));
    ws->in_count = arena_take(a, P, B, sizeof(int32_t));
    ws->in_rows = arena_take(a, P, nnz, sizeof(int32_t));
    ws->in_vals = arena_take(a, P, nnz, sizeof(float));
    ws->grad = arena_take(a, P, nt * mw, sizeof(float));
    if (net->sparse || net->hsparse)
        ws->out_ids = arena_take(a, P, B * ws->kmax, sizeof(int32_t));
    if (net->sparse) {
        probe_layout(a, &ws->probes, net, nt, B);
        ws->missed = arena_take(a, P, B * lab, sizeof(int32_t));
        ws->n_missed = arena_take(a, P, B, sizeof(int32_t));
    }
    /* phase 2 indexes input rows (features) and output rows (neurons) */
    const int64_t rows = c->n_features > C ? c->n_features : C;
    int64_t ents = net->sparse || net->hsparse ? B * ws->kmax : 0;
    ents = ents > ws->max_nnz ? ents : ws->max_nnz;
    rowindex_layout(&ws->ix, a, rows, ents > 0 ? ents : 1, (int32_t)nt);
}

void train_layout(arena *a, const bolt_network *net, int64_t B,
                  int64_t max_lab, int64_t max_nnz, int32_t nt)
{
    workspace ws;
    ws_dims(&ws, net, B, max_lab, max_nnz, nt);
    ws_layout(a, &ws, net);
}

static int ws_alloc(workspace *ws, const bolt_network *net, int64_t B,
                    int64_t max_lab, int64_t max_nnz, int32_t nt)
{
    ws_dims(ws, net, B, max_lab, max_nnz, nt);
    const int rc = arena_build(ws_layout, ws, net, 0, &ws->block, "the training buffers");
    if (rc == BOLT_ENOMEM) {
        arena a = {0};
        ws_layout(&a, ws, net);
        return bolt_fail(BOLT_ENOMEM,
                         "out of memory for the training buffers (about %.1f MB for a "
                         "batch of %lld); use a smaller batch_size",
                         (double)arena_bytes(&a) / 1e6, (long long)B);
    }
    return rc;
}

/* The network keeps the workspace of its last bolt_train for the next: an
 * epoch is 20 calls, and allocating and zeroing the buffers afresh for each
 * (8 MB of probe marks and 8 MB of row counts at 1M outputs on two threads,
 * page faults included) was a serial 5% of a fit. A call that fits in the
 * kept buffers (same batch and threads, no more labels or nonzeros per
 * batch) reuses them: every build and probe leaves its scratch as it found
 * it. */
static int ws_kept(bolt_network *net, int64_t B, int64_t max_lab, int64_t max_nnz,
                   int32_t nt, workspace **out)
{
    workspace *ws = net->train_ws;
    if (ws && ws->B == B && ws->nt == nt && ws->max_lab >= max_lab && ws->max_nnz >= max_nnz) {
        *out = ws;
        return BOLT_OK;
    }
    train_release(net);
    if (!(ws = malloc(sizeof *ws)))
        return bolt_fail(BOLT_ENOMEM, "out of memory for the training buffers");
    const int rc = ws_alloc(ws, net, B, max_lab, max_nnz, nt);
    if (rc) {
        free(ws);
        return rc;
    }
    net->train_ws = *out = ws;
    return BOLT_OK;
}

void train_release(bolt_network *net)
{
    workspace *ws = net->train_ws;
    if (ws) {
        free(ws->block);
        free(ws);
        net->train_ws = NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* phase 1: one sample                                                        */

/* z holds logits of n neurons; label_pos the positions in z of the sample's
 * nl labels. Returns the sample's loss and leaves scale * dloss/dz in z. */
static double loss_grad(float *z, int64_t n, const int32_t *label_pos,
                        int32_t nl, int loss, float scale)
{
    double total = 0.0;
    if (loss == BOLT_LOSS_SOFTMAX) {
        if (nl == 0) {
            memset(z, 0, (size_t)n * sizeof(float));
            return 0.0;
        }
        const double lse = log_sum_exp(z, n);
        const float t = 1.0f / (float)nl;
        for (int32_t j = 0; j < nl; j++)
            total -= (double)t * ((double)z[label_pos[j]] - lse);
        for (int64_t j = 0; j < n; j++)
            z[j] = output_prob(loss, z[j], lse) * scale;
        for (int32_t j = 0; j < nl; j++)
            z[label_pos[j]] -= t * scale;
    } else {
        /* binary cross-entropy: softplus(z) - t * z, summed */
        for (int32_t j = 0; j < nl; j++)
            total -= (double)z[label_pos[j]];
        for (int64_t j = 0; j < n; j++) {
            double x = z[j];
            total += fmax(x, 0.0) + log1p(exp(-fabs(x)));
            z[j] = output_prob(loss, z[j], 0.0) * scale;
        }
        for (int32_t j = 0; j < nl; j++)
            z[label_pos[j]] -= scale;
    }
    return total;
}

/* The row's labels as column ids (validated to be in range), in the
 * thread's label_pos. */
static int32_t row_labels(const workspace *ws, const bolt_csr *Y, int64_t row,
                          int tid, int32_t **lp)
{
    *lp = ws->label_pos + (int64_t)tid * (ws->max_lab > 0 ? ws->max_lab : 1);
    const int64_t y0 = csr_ptr(Y, row), y1 = csr_ptr(Y, row + 1);
    int32_t nl = 0;
    for (int64_t p = y0; p < y1; p++)
        (*lp)[nl++] = (int32_t)csr_col(Y, p);
    return nl;
}

/* Logits and loss of sample s over its active set; returns its size. */
static int32_t sparse_output(const bolt_network *net, workspace *ws,
                             const float *h, const negative_source *neg, int64_t s,
                             int tid, int32_t *lp, int32_t nl, float scale,
                             const int32_t *hid, const float *ha)
{
    const int64_t H = net->width[net->cfg.n_hidden];
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    int32_t *ids = ws->out_ids + s * ws->kmax;
    float *z = ws->out_val + s * ws->kmax;
    const probe p = probe_at(&ws->probes, net, tid, s);
    probe_hash(net, &p, h);
    int32_t nd;
    const int32_t n = choose_active(net, &p, neg, lp, nl, ids, &nd,
                                    ws->missed + s * ws->max_lab, &ws->n_missed[s]);
    for (int32_t j = 0; j < n && hid; j++) /* a sparse hidden vector */
        z[j] = gather_dot(out->w + (int64_t)ids[j] * H, hid, ha, net->hk) + out->b[ids[j]];
    for (int32_t j = 0; j < n && !hid; j++) {
        if (j + PREFETCH_ROWS < n)
            prefetch_floats(out->w + (int64_t)ids[j + PREFETCH_ROWS] * H, H);
        z[j] = simd_dot(out->w + (int64_t)ids[j] * H, h, H) + out->b[ids[j]];
    }
    /* choose_active put the distinct labels first */
    for (int32_t j = 0; j < nd; j++)
        lp[j] = j;
    ws->loss[s] = loss_grad(z, n, lp, nd, net->cfg.loss, scale);
    ws->out_begin[s] = s * ws->kmax;
    ws->out_n[s] = n;
    return n;
}

static int32_t dense_output(const bolt_network *net, workspace *ws,
                            const float *h, int64_t s, int32_t *lp, int32_t nl,
                            float scale)
{
    const int64_t C = net->cfg.n_outputs;
    float *z = ws->out_val + s * C;
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    if (net->hsparse) { /* h is the sample's active activations */
        const int32_t *hid = ws->hid + s * net->hk;
        for (int64_t j = 0; j < C; j++)
            z[j] = gather_dot(out->w + j * out->cols, hid, h, net->hk) + out->b[j];
    } else {
        layer_dense_forward(out, h, z);
    }
    /* duplicate labels in a row count once */
    int32_t nd = 0;
    for (int32_t j = 0; j < nl; j++) {
        int dup = 0;
        for (int32_t q = 0; q < nd; q++)
            dup |= lp[q] == lp[j];
        if (!dup)
            lp[nd++] = lp[j];
    }
    ws->loss[s] = loss_grad(z, C, lp, nd, net->cfg.loss, scale);
    return (int32_t)C;
}

/* da = sum of g_j * w_j over the n output rows sample s used. */
static void output_backward(const bolt_network *net, const workspace *ws,
                            int64_t s, int32_t n, float *da)
{
    const int64_t H = net->width[net->cfg.n_hidden];
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    memset(da, 0, (size_t)H * sizeof(float));
    if (net->sparse) {
        const int32_t *ids = ws->out_ids + s * ws->kmax;
        const float *z = ws->out_val + s * ws->kmax;
        for (int32_t j = 0; j < n; j++) {
            if (j + PREFETCH_ROWS < n)
                prefetch_floats(out->w + (int64_t)ids[j + PREFETCH_ROWS] * H, H);
            simd_axpy(z[j], out->w + (int64_t)ids[j] * H, da, H);
        }
    } else {
        const float *z = ws->out_val + s * n;
        for (int64_t j = 0; j < n; j++)
            if (z[j] != 0.0f)
                simd_axpy(z[j], out->w + j * H, da, H);
    }
}

/* Phase 1 for one sample: forward, loss over the active set, backward. */
static void sample_pass(const bolt_network *net, workspace *ws,
                        const bolt_csr *X, const bolt_csr *Y, const int64_t *rows,
                        int64_t B, int64_t s, float scale)
{
    const int64_t row = rows[s];
    /* like the dropout masks, the draws are a pure function of (seed, step, row) */
    const negative_source neg = {
        rng_at(rng_at(net->cfg.seed, 0x7000u, (uint64_t)net->ctr.step), (uint64_t)row, 0),
        Y, rows, B};
    const int tid = THREAD_ID();
    const int64_t mw = max_width(&net->cfg);
    float *acts[BOLT_MAX_HIDDEN], *deltas[BOLT_MAX_HIDDEN];
    for (int i = 0; i < net->cfg.n_hidden; i++) {
        acts[i] = ws->act[i] + s * net->width[i + 1];
        deltas[i] = ws->delta[i] + s * net->width[i + 1];
    }
    const float *h = hidden_forward(net, X, row, acts, 1);
    int32_t *lp;
    const int32_t nl = row_labels(ws, Y, row, tid, &lp);
    const int32_t n = net->sparse ? sparse_output(net, ws, h, &neg, s, tid, lp, nl, scale,
                                                  NULL, NULL)
                                  : dense_output(net, ws, h, s, lp, nl, scale);
    float *da = ws->scratch + (int64_t)tid * 2 * mw;
    output_backward(net, ws, s, n, da);
    hidden_backward(net, acts, deltas, da, da + mw);
}

/* Phase 1 for one sample through a sparse hidden layer: its active units,
 * their forward pass, the output layer on that k-sparse vector, and the
 * backward pass through the active units alone. */
static void sparse_sample_pass(const bolt_network *net, workspace *ws, const bolt_csr *X,
                               const bolt_csr *Y, const int64_t *rows, int64_t B, int64_t s,
                               float scale)
{
    const int64_t row = rows[s], k = net->hk, H = net->width[1];
    const negative_source neg = {
        rng_at(rng_at(net->cfg.seed, 0x7000u, (uint64_t)net->ctr.step), (uint64_t)row, 0),
        Y, rows, B};
    const int tid = THREAD_ID();
    const hidden_probe hp = hprobe_at(&ws->hprobes, net, tid);
    int32_t *hid = ws->hid + s * k;
    float *a = ws->act[0] + s * k, *d = ws->delta[0] + s * k;
    if (hsparse_choose(net, &hp, X, row, (uint64_t)net->ctr.step + 1, hid, a))
        relu_in_place(a, k);
    else
        hsparse_forward(net, X, row, hid, (int32_t)k, a);
    int32_t *lp;
    const int32_t nl = row_labels(ws, Y, row, tid, &lp);
    const bolt_layer *out = &net->layer[1];
    int32_t n;
    const int32_t *oid;
    const float *g;
    if (net->sparse) {
        /* the output tables hash a dense vector: scattered, then cleared */
        float *h = ws->hdense + (int64_t)tid * H;
        for (int64_t i = 0; i < k; i++)
            h[hid[i]] = a[i];
        n = sparse_output(net, ws, h, &neg, s, tid, lp, nl, scale, hid, a);
        for (int64_t i = 0; i < k; i++)
            h[hid[i]] = 0.0f;
        oid = ws->out_ids + s * ws->kmax;
        g = ws->out_val + s * ws->kmax;
    } else {
        n = dense_output(net, ws, a, s, lp, nl, scale);
        oid = NULL;
        g = ws->out_val + s * n;
    }
    /* da_i = sum_j g_j w[j, hid_i], over the output rows used */
    for (int64_t i = 0; i < k; i++)
        d[i] = 0.0f;
    for (int32_t j = 0; j < n; j++) {
        if (g[j] == 0.0f)
            continue;
        const float *w = out->w + (int64_t)(oid ? oid[j] : j) * H;
        for (int64_t i = 0; i < k; i++)
            d[i] += g[j] * w[hid[i]];
    }
    for (int64_t i = 0; i < k; i++)
        d[i] = a[i] > 0.0f ? d[i] : 0.0f;
}

static void run_phase1(bolt_network *net, workspace *ws, const bolt_csr *X,
                       const bolt_csr *Y, const int64_t *rows, int64_t B,
                       int32_t nt, double *loss_sum)
{
    const float scale = 1.0f / (float)B;
    (void)nt; /* without OpenMP */
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
    for (int64_t s = 0; s < B; s++) {
        if (net->hsparse)
            sparse_sample_pass(net, ws, X, Y, rows, B, s, scale);
        else
            sample_pass(net, ws, X, Y, rows, B, s, scale);
    }
    double total = 0.0;
    for (int64_t s = 0; s < B; s++)
        total += ws->loss[s];
    *loss_sum += total;
}

/* ------------------------------------------------------------------------ */
/* phase 2: one layer                                                         */

/* The batch's input nonzeros as (feature, value) entries per sample. */
static void input_entries(workspace *ws, const bolt_csr *X,
                          const int64_t *rows, int64_t B)
{
    int64_t e = 0;
    for (int64_t s = 0; s < B; s++) {
        const int64_t p0 = csr_ptr(X, rows[s]), p1 = csr_ptr(X, rows[s] + 1);
        ws->in_begin[s] = e;
        ws->in_count[s] = (int32_t)(p1 - p0);
        for (int64_t p = p0; p < p1; p++, e++) {
            ws->in_rows[e] = (int32_t)csr_col(X, p);
            ws->in_vals[e] = csr_val(X, p);
        }
    }
}

/* layer_update next to a sparse hidden layer: rows step only at the
 * columns of the active units (colgrad.c). */
static void sparse_layer_update(bolt_network *net, workspace *ws, const bolt_csr *X,
                                const int64_t *rows, int64_t B, int li,
                                const row_sink *sink, int32_t nt)
{
    const int32_t k = net->hk;
    if (li == 1) {
        if (!net->sparse) { /* every output row, from every sample */
            update_all_cols(B, net->cfg.n_outputs, ws->out_val, ws->hid, ws->act[0], k, sink,
                            &ws->cb, nt);
            return;
        }
        rowindex_build(&ws->ix, B, ws->out_begin, ws->out_n, ws->out_ids, ws->out_val, nt);
        update_indexed_cols(&ws->ix, ws->hid, ws->act[0], k, sink, &ws->cb, nt);
    } else {
        input_entries(ws, X, rows, B);
        rowindex_build(&ws->ix, B, ws->in_begin, ws->in_count, ws->in_rows, ws->in_vals, nt);
        update_indexed_cols(&ws->ix, ws->hid, ws->delta[0], k, sink, &ws->cb, nt);
        update_sparse_bias(B, ws->hid, ws->delta[0], k, sink, &ws->cb);
    }
}

/* Gathers each touched row's gradient of layer li and hands it to the sink. */
static void layer_update(bolt_network *net, workspace *ws, const bolt_csr *X,
                         const int64_t *rows, int64_t B, int li,
                         const row_sink *sink, int32_t nt)
{
    const int nh = net->cfg.n_hidden;
    if (net->hsparse) {
        sparse_layer_update(net, ws, X, rows, B, li, sink, nt);
        return;
    }
    if (li == nh && !net->sparse) {
        update_all_rows(B, ws->out_val, ws->act[nh - 1], sink, nt);
    } else if (li == nh) {
        rowindex_build(&ws->ix, B, ws->out_begin, ws->out_n, ws->out_ids, ws->out_val, nt);
        update_indexed_rows(&ws->ix, ws->act[nh - 1], net->width[nh], sink, nt);
    } else if (li > 0) {
        update_all_rows(B, ws->delta[li], ws->act[li - 1], sink, nt);
    } else {
        input_entries(ws, X, rows, B);
        rowindex_build(&ws->ix, B, ws->in_begin, ws->in_count, ws->in_rows, ws->in_vals, nt);
        update_indexed_rows(&ws->ix, ws->delta[0], net->width[1], sink, nt);
        float *gb = ws->scratch; /* phase 1 is over: thread 0's scratch is free */
        const int64_t w = net->width[1];
        memset(gb, 0, (size_t)w * sizeof(float));
        for (int64_t s = 0; s < B; s++)
            simd_axpy(1.0f, ws->delta[0] + s * w, gb, w);
        sink_bias(sink, gb);
    }
}

static row_sink make_sink(bolt_network *net, const workspace *ws, int li,
                          const bolt_adam *adam, float *gw, float *gb)
{
    row_sink sink = {&net->layer[li], adam, gw, gb, li > 0, ws->grad};
    return sink;
}

/* ------------------------------------------------------------------------ */
/* entry points                                                               */

static int train_batch(bolt_network *net, workspace *ws, const bolt_csr *X,
                       const bolt_csr *Y, const int64_t *rows, int64_t nb,
                       float learning_rate, int32_t nt, double *loss_sum)
{
    bolt_timings *t = &net->time;
    double t0 = wall_seconds(), t1;
    run_phase1(net, ws, X, Y, rows, nb, nt, loss_sum);
    t1 = wall_seconds();
    t->samples += t1 - t0;
    if (net->sparse && net->ctr.frozen) {
        learn_missed_labels(net, ws->probes.keys, ws->missed, ws->n_missed, ws->max_lab, nb, nt);
        t0 = t1;
        t1 = wall_seconds();
        t->missed_labels += t1 - t0;
    }
    net->ctr.step++;
    const bolt_adam adam = adam_at_step(&net->cfg, learning_rate, net->ctr.step);
    for (int li = net->n_layers - 1; li >= 0; li--) {
        const row_sink sink = make_sink(net, ws, li, &adam, NULL, NULL);
        layer_update(net, ws, X, rows, nb, li, &sink, nt);
        t0 = t1;
        t1 = wall_seconds();
        *(li == net->n_layers - 1 ? &t->update_output
                                  : li == 0 ? &t->update_input : &t->update_hidden) += t1 - t0;
    }
    const int rc = maintain_tables(net, nt);
    t->tables += wall_seconds() - t1;
    t->batches++;
    return rc;
}

int bolt_train(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
               const int64_t *rows, int64_t n_rows, int32_t batch_size,
               float learning_rate, int32_t n_threads, double *loss_sum)
{
    int64_t max_lab, max_nnz;
    int rc;
    const double start = wall_seconds();
    if ((rc = check_given("network X Y loss_sum", (const void *[]){net, X, Y, loss_sum}, 4)) ||
        (rc = check_training_inputs(net, X, Y, rows, n_rows, batch_size, n_threads,
                                    &max_lab, &max_nnz)))
        return rc;
    if (!(learning_rate > 0.0f) || !isfinite(learning_rate))
        return bolt_fail(BOLT_EINVAL, "learning_rate must be a positive finite number");
    *loss_sum = 0.0;
    mark_seen(net, Y, rows, n_rows);
    const int64_t B = batch_size < n_rows ? batch_size : n_rows;
    workspace *ws = NULL;
    if ((rc = ws_kept(net, B, max_lab, max_nnz, n_threads, &ws)))
        return rc;
    net->time.setup += wall_seconds() - start;
    for (int64_t b0 = 0; b0 < n_rows && rc == BOLT_OK; b0 += B) {
        const int64_t nb = n_rows - b0 < B ? n_rows - b0 : B;
        rc = train_batch(net, ws, X, Y, rows + b0, nb, learning_rate, n_threads, loss_sum);
    }
    if (rc)
        train_release(net); /* a failed call leaves nothing behind */
    return rc;
}

int bolt_release_buffers(bolt_network *net)
{
    int rc;
    if ((rc = check_given("network", (const void *[]){net}, 1)))
        return rc;
    train_release(net);
    return BOLT_OK;
}

int bolt_gradient(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                  const int64_t *rows, int64_t n_rows, int32_t layer,
                  int32_t n_threads, float *grad_w, float *grad_b,
                  double *loss_sum)
{
    int64_t max_lab, max_nnz;
    int rc;
    if ((rc = check_given("network X Y grad_w grad_b loss_sum",
                          (const void *[]){net, X, Y, grad_w, grad_b, loss_sum}, 6)) ||
        (rc = check_training_inputs(net, X, Y, rows, n_rows, n_rows, n_threads, &max_lab,
                                    &max_nnz)) ||
        (rc = check_layer(net, layer)))
        return rc;
    workspace ws;
    if ((rc = ws_alloc(&ws, net, n_rows, max_lab, max_nnz, n_threads)))
        return rc;
    const bolt_layer *l = &net->layer[layer];
    memset(grad_w, 0, (size_t)(l->rows * l->cols) * sizeof(float));
    memset(grad_b, 0, (size_t)l->bias_len * sizeof(float));
    *loss_sum = 0.0;
    /* frozen tables would learn from this pass; gradients must not */
    const int32_t frozen = net->ctr.frozen;
    net->ctr.frozen = 0;
    run_phase1(net, &ws, X, Y, rows, n_rows, n_threads, loss_sum);
    net->ctr.frozen = frozen;
    const row_sink sink = make_sink(net, &ws, layer, NULL, grad_w, grad_b);
    layer_update(net, &ws, X, rows, n_rows, layer, &sink, n_threads);
    free(ws.block);
    return BOLT_OK;
}
