/* Fully connected layers: storage, initialisation, the forward pass through
 * the hidden layers and the backward pass through them.
 *
 * The input layer keeps one row of hidden-width weights per input feature,
 * so a sparse sample costs one axpy per nonzero. Every other layer keeps one
 * row per output neuron, so the sampled output layer reads only the rows of
 * its active neurons.
 *
 * Training and inference run the same hidden_forward, so what a model
 * predicts is computed exactly as what it was trained on, less dropout.
 */
#include "network.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

void layer_layout(bolt_layer *l, arena *a, int64_t rows, int64_t cols,
                  int64_t bias_len, int64_t pool_block)
{
    const int64_t n = mul_sat(rows, cols);
    l->rows = rows;
    l->cols = cols;
    l->bias_len = bias_len;
    l->w = arena_take(a, PART_WEIGHTS, n, sizeof(float));
    l->b = arena_zero(a, PART_WEIGHTS, bias_len, sizeof(float));
    /* slot numbers are 32-bit: past that, plain moments */
    const int64_t blocks = pool_block > 0 ? mul_sat(rows, cols / pool_block) : 0;
    if (pool_block > 0 && cols % pool_block == 0 && blocks < (int64_t)UINT32_MAX) {
        l->pool_block = pool_block;
        l->pool_used = 0;
        l->slot = arena_zero(a, PART_OPTIMIZER, blocks, sizeof(uint32_t));
        l->moved = arena_zero(a, PART_BUFFERS, blocks, 1);
        l->pool = arena_zero(a, PART_OPTIMIZER, mul_sat(n, 2), sizeof(float));
        l->mw = l->vw = NULL;
    } else {
        l->pool_block = 0;
        l->slot = NULL;
        l->pool = NULL;
        l->moved = NULL;
        l->mw = arena_zero(a, PART_OPTIMIZER, n, sizeof(float));
        l->vw = arena_zero(a, PART_OPTIMIZER, n, sizeof(float));
    }
    l->mb = arena_zero(a, PART_OPTIMIZER, bias_len, sizeof(float));
    l->vb = arena_zero(a, PART_OPTIMIZER, bias_len, sizeof(float));
    l->changed = arena_zero(a, PART_BUFFERS, rows, sizeof(uint8_t)); /* like the seen flags */
}

/* Glorot-uniform weights, zero biases: the scale sklearn's MLP uses for
 * ReLU networks, drawn from a counter RNG so each weight depends only on
 * (seed, layer, position), whichever thread draws it. Parallel because
 * these writes are the first touch of the weights' pages: at 1M outputs
 * creation was 0.4 s of one thread in a 5.5 s fit on two. */
void layer_init(bolt_layer *l, uint64_t seed, int index, int64_t fan_in,
                int64_t fan_out, int32_t n_threads)
{
    const float bound = sqrtf(6.0f / (float)(fan_in + fan_out));
    const int64_t n = l->rows * l->cols;
    (void)n_threads; /* without OpenMP */
#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t i = 0; i < n; i++) {
        float u = rng_unit(rng_at(seed, 0x1000u + (uint64_t)index, (uint64_t)i));
        l->w[i] = (2.0f * u - 1.0f) * bound;
    }
}

void layer_input_forward(const bolt_layer *l, const bolt_csr *x, int64_t row,
                         float *z)
{
    memcpy(z, l->b, (size_t)l->cols * sizeof(float));
    const int64_t end = csr_ptr(x, row + 1);
    for (int64_t p = csr_ptr(x, row); p < end; p++)
        simd_axpy(csr_val(x, p), l->w + csr_col(x, p) * l->cols, z, l->cols);
}

void layer_dense_forward(const bolt_layer *l, const float *in, float *z)
{
    for (int64_t r = 0; r < l->rows; r++)
        z[r] = simd_dot(l->w + r * l->cols, in, l->cols) + l->b[r];
}

static void relu(float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

/* Inverted dropout on a training sample's hidden layer: a unit survives
 * with probability 1 - p and is scaled by 1 / (1 - p). The mask is a pure
 * function of (seed, step, layer, row), so it does not depend on which
 * thread runs the sample. */
static void dropout(const bolt_network *net, float *a, int64_t n, int layer,
                    int64_t row)
{
    const float p = net->cfg.dropout;
    if (p <= 0.0f)
        return;
    const uint32_t cut = (uint32_t)(p * 256.0f);
    const float keep = 1.0f / (1.0f - p);
    const uint64_t base = rng_at(net->cfg.seed, 0x6000u + (uint64_t)layer, (uint64_t)net->ctr.step);
    uint64_t r = 0;
    for (int64_t j = 0; j < n; j++) {
        if ((j & 7) == 0)
            r = rng_at(base, (uint64_t)row, (uint64_t)j >> 3);
        a[j] = (uint32_t)((r >> (8 * (j & 7))) & 0xFFu) < cut ? 0.0f : a[j] * keep;
    }
}

const float *hidden_forward(const bolt_network *net, const bolt_csr *X,
                            int64_t row, float *const *acts, int training)
{
    float *a = acts[0];
    layer_input_forward(&net->layer[0], X, row, a);
    relu(a, net->width[1]);
    if (training)
        dropout(net, a, net->width[1], 0, row);
    for (int i = 1; i < net->cfg.n_hidden; i++) {
        float *o = acts[i];
        layer_dense_forward(&net->layer[i], a, o);
        relu(o, net->width[i + 1]);
        if (training)
            dropout(net, o, net->width[i + 1], i, row);
        a = o;
    }
    return a;
}

void hidden_last(const bolt_network *net, float *buf, int32_t **ids, float **a)
{
    float *at = buf + net->width[1] + hprobe_words(net);
    *ids = (int32_t *)at;
    *a = at + net->hk;
}

const float *hidden_infer(const bolt_network *net, const bolt_csr *X,
                          int64_t row, float *buf)
{
    if (net->hsparse) {
        /* buf: the dense vector (H), the probe, then the active ids and
         * their activations, which the scorers read back (hidden_last) */
        const int64_t H = net->width[1];
        if (net->hexact) {
            layer_input_forward(&net->layer[0], X, row, buf);
            relu(buf, H);
            return buf;
        }
        const hidden_probe p = hprobe_carve(net, buf + H);
        int32_t *ids;
        float *a;
        hidden_last(net, buf, &ids, &a);
        if (hsparse_choose(net, &p, X, row, 0, ids, a))
            relu_in_place(a, net->hk);
        else
            hsparse_forward(net, X, row, ids, net->hk, a);
        memset(buf, 0, (size_t)H * sizeof(float));
        for (int32_t i = 0; i < net->hk; i++)
            buf[ids[i]] = a[i];
        return buf;
    }
    float *acts[BOLT_MAX_HIDDEN];
    acts[0] = buf;
    for (int i = 1; i < net->cfg.n_hidden; i++)
        acts[i] = acts[i - 1] + net->width[i];
    return hidden_forward(net, X, row, acts, 0);
}

void hidden_backward(const bolt_network *net, float *const *acts,
                     float *const *deltas, float *da, float *db)
{
    /* a surviving unit's activation was scaled by 1 / (1 - p); so is its
     * derivative */
    const float keep = 1.0f / (1.0f - net->cfg.dropout);
    for (int i = net->cfg.n_hidden - 1; i >= 0; i--) {
        const int64_t w = net->width[i + 1];
        const float *act = acts[i];
        float *dz = deltas[i];
        for (int64_t j = 0; j < w; j++)
            dz[j] = act[j] > 0.0f ? da[j] * keep : 0.0f;
        if (i > 0) {
            const bolt_layer *l = &net->layer[i];
            memset(db, 0, (size_t)l->cols * sizeof(float));
            for (int64_t r = 0; r < l->rows; r++)
                if (dz[r] != 0.0f)
                    simd_axpy(dz[r], l->w + r * l->cols, db, l->cols);
            float *t = da;
            da = db;
            db = t;
        }
    }
}

/* The max shift is taken in float and the sum in double, so the result
 * is the same whatever the spread of the logits. */
double log_sum_exp(const float *z, int64_t n)
{
    float m = z[0];
    for (int64_t j = 1; j < n; j++)
        m = z[j] > m ? z[j] : m;
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++)
        sum += exp((double)(z[j] - m));
    return (double)m + log(sum);
}

/* ------------------------------------------------------------------------ */
/* output rows from label centroids                                           */

void hidden_rows(const bolt_network *net, const bolt_csr *X, const int64_t *rows,
                 int64_t n, float *hs, float *buf, int32_t nt)
{
    const int64_t H = net->width[net->cfg.n_hidden], sw = sum_width(&net->cfg);
    (void)nt; /* without OpenMP */
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        memcpy(hs + i * H, hidden_infer(net, X, rows ? rows[i] : i, buf + THREAD_ID() * sw),
               (size_t)H * sizeof(float));
}

#define CENTROID_CHUNK 1024

/* Sums of the hidden vectors per label into the label's output row (zeroed
 * at its first row), the label counts into n_of, their sum and squared
 * norms into *sum and *sq; rows with an all-zero hidden vector add
 * nothing. In row order, one thread: the same at any thread count. */
static int64_t centroid_sums(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                             const int64_t *rows, int64_t n_rows, float *hs,
                             double *n_of, double *sum, double *sq, int32_t nt)
{
    int64_t used = 0;
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    const int64_t H = out->cols;
    for (int64_t r0 = 0; r0 < n_rows; r0 += CENTROID_CHUNK) {
        const int64_t n = n_rows - r0 < CENTROID_CHUNK ? n_rows - r0 : CENTROID_CHUNK;
        hidden_rows(net, X, rows + r0, n, hs, hs + CENTROID_CHUNK * H, nt);
        for (int64_t i = 0; i < n; i++) {
            const float *h = hs + i * H;
            const double hh = (double)simd_dot(h, h, H);
            if (hh == 0.0)
                continue;
            used++;
            *sq += hh;
            for (int64_t c = 0; c < H; c++)
                sum[c] += h[c];
            const int64_t y1 = csr_ptr(Y, rows[r0 + i] + 1);
            for (int64_t p = csr_ptr(Y, rows[r0 + i]); p < y1; p++) {
                const int64_t j = csr_col(Y, p);
                float *w = out->w + j * H;
                if (n_of[j] == 0.0)
                    memset(w, 0, (size_t)H * sizeof(float));
                n_of[j] += 1.0;
                simd_axpy(1.0f, h, w, H);
            }
        }
    }
    return used;
}

/* Row j = logit_scale * (S_j - n_j mu) / (|S_j - n_j mu| * spread) and bias
 * -row . mu, so that the row scores (h - mu) and a hidden vector one
 * spread from the mean in the centroid's direction gets logit_scale. */
static void centre_rows(bolt_network *net, const double *n_of, const double *mu,
                        double spread, float logit_scale)
{
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    const int64_t H = out->cols;
    for (int64_t j = 0; j < out->rows; j++) {
        if (n_of[j] == 0.0)
            continue;
        float *w = out->w + j * H;
        double norm = 0.0, dot = 0.0;
        for (int64_t c = 0; c < H; c++) {
            w[c] = (float)((double)w[c] - n_of[j] * mu[c]);
            norm += (double)w[c] * w[c];
        }
        norm = sqrt(norm);
        const double s = norm > 0.0 && spread > 0.0 ? logit_scale / (norm * spread) : 0.0;
        for (int64_t c = 0; c < H; c++) {
            w[c] = (float)(w[c] * s);
            dot += (double)w[c] * mu[c];
        }
        out->b[j] = (float)-dot;
    }
}

/* Sigmoid outputs are not shift-invariant: centred rows give every output
 * logit 0 (probability 1/2) at the mean hidden vector, and an output row
 * gets too few Adam steps to pull that down (measured: multi-label rows
 * with 12 of 10k labels, the loss fell 66.4 -> 63.7 in 4 epochs and P@1
 * stayed near 0). So each bias gains the log-odds of its label's share of
 * the rows; labels no row carries get that of half a row. */
static void prior_biases(bolt_network *net, const double *n_of, double used)
{
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    for (int64_t j = 0; j < out->rows; j++) {
        const double n = n_of[j] > 0.0 ? n_of[j] : 0.5;
        out->b[j] += (float)log(n / (used - n + 1.0));
    }
}

/* The end of both centroid starts: with the label sums already in their
 * output rows, n_of the label counts, sum the summed hidden vectors of the
 * `used` rows (divided in place into their mean) and sq their summed
 * squared norms: centre and scale the rows, set the biases and the centre,
 * rebuild the tables. */
static int centre_from_sums(bolt_network *net, const double *n_of, double *sum, double sq,
                            int64_t used, float logit_scale, int32_t n_threads)
{
    const int64_t H = net->layer[net->cfg.n_hidden].cols;
    if (used > 0) {
        double mu2 = 0.0;
        for (int64_t c = 0; c < H; c++) {
            sum[c] /= (double)used; /* now the mean */
            mu2 += sum[c] * sum[c];
        }
        const double var = sq / (double)used - mu2;
        centre_rows(net, n_of, sum, var > 0.0 ? sqrt(var) : 0.0, logit_scale);
        if (net->cfg.loss == BOLT_LOSS_SIGMOID)
            prior_biases(net, n_of, (double)used);
        for (int64_t c = 0; net->center && c < H; c++)
            net->center[c] = (float)sum[c];
    }
    /* the rows' labels are seen from here on (as bolt_train would mark
     * them), so the rebuild below inserts them alone */
    int fresh = 0;
    for (int64_t j = 0; j < net->cfg.n_outputs; j++)
        if (n_of[j] > 0.0)
            fresh |= see_output(net, j);
    if (fresh)
        order_fill(net);
    if (net->sparse) {
        net->ctr.since_rebuild = 0;
        return build_tables(net, n_threads);
    }
    return BOLT_OK;
}

int bolt_init_centroids(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                        const int64_t *rows, int64_t n_rows, float logit_scale,
                        int32_t n_threads)
{
    int64_t max_lab, max_nnz;
    int rc;
    if ((rc = check_given("network X Y", (const void *[]){net, X, Y}, 3)) ||
        (rc = check_training_inputs(net, X, Y, rows, n_rows, 1, n_threads, &max_lab,
                                    &max_nnz)))
        return rc;
    if (!(logit_scale > 0.0f) || !isfinite(logit_scale))
        return bolt_fail(BOLT_EINVAL, "logit_scale must be a positive finite number");
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    const int64_t H = out->cols, C = out->rows, sw = sum_width(&net->cfg);
    float *hs = malloc((size_t)(CENTROID_CHUNK * H + n_threads * sw) * sizeof(float));
    double *n_of = calloc((size_t)C, sizeof(double));
    double *sum = calloc((size_t)H, sizeof(double));
    if (!hs || !n_of || !sum) {
        free(hs);
        free(n_of);
        free(sum);
        return bolt_fail(BOLT_ENOMEM, "out of memory for the label centroids");
    }
    double sq = 0.0;
    const int64_t used = centroid_sums(net, X, Y, rows, n_rows, hs, n_of, sum, &sq, n_threads);
    free(hs);
    rc = centre_from_sums(net, n_of, sum, sq, used, logit_scale, n_threads);
    free(n_of);
    free(sum);
    return rc;
}

int bolt_set_centroids(bolt_network *net, const int32_t *labels, int64_t n_labels,
                       const float *sums, const double *counts, const double *total,
                       double sq, int64_t used, float logit_scale, int32_t n_threads)
{
    int rc;
    if ((rc = check_given("network", (const void *[]){net}, 1)))
        return rc;
    if (n_labels < 0 || used < 0 || (n_labels > 0 && (!labels || !sums || !counts)) || !total)
        return bolt_fail(BOLT_EINVAL, "centroid sums: missing arrays or negative counts");
    if (n_threads < 1)
        return bolt_fail(BOLT_EINVAL, "n_threads must be at least 1");
    if (!(logit_scale > 0.0f) || !isfinite(logit_scale) || !(sq >= 0.0) || !isfinite(sq))
        return bolt_fail(BOLT_EINVAL, "logit_scale must be positive and sq a finite sum");
    const bolt_layer *out = &net->layer[net->cfg.n_hidden];
    const int64_t H = out->cols, C = out->rows;
    for (int64_t i = 0; i < n_labels; i++)
        if (labels[i] < 0 || labels[i] >= C || !(counts[i] > 0.0) || !isfinite(counts[i]))
            return bolt_fail(BOLT_EINVAL, "centroid sums: a label out of range or a count "
                                          "that is not positive");
    double *n_of = calloc((size_t)C, sizeof(double));
    double *sum = malloc((size_t)H * sizeof(double));
    if (!n_of || !sum) {
        free(n_of);
        free(sum);
        return bolt_fail(BOLT_ENOMEM, "out of memory for the label centroids");
    }
    memcpy(sum, total, (size_t)H * sizeof(double));
    for (int64_t i = 0; i < n_labels; i++) {
        n_of[labels[i]] = counts[i];
        memcpy(out->w + (int64_t)labels[i] * H, sums + i * H, (size_t)H * sizeof(float));
    }
    rc = centre_from_sums(net, n_of, sum, sq, used, logit_scale, n_threads);
    free(n_of);
    free(sum);
    return rc;
}
