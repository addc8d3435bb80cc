/* Reading and restoring a network's state: configuration, parameters,
 * counters, seen flags, frozen flag and table contents. A model saved
 * through these and restored into a network made from the same config
 * predicts, and goes on training, exactly as the original. Every setter
 * validates all of its input before it changes anything.
 */
#include "network.h"

#include <math.h>
#include <string.h>

int bolt_get_config(const bolt_network *net, bolt_config *out)
{
    int rc = check_given("network out", (const void *[]){net, out}, 2);
    if (rc)
        return rc;
    *out = net->cfg;
    return BOLT_OK;
}

int bolt_layer_shape(const bolt_network *net, int32_t layer, int64_t *rows,
                     int64_t *cols, int64_t *bias_len)
{
    int rc;
    if ((rc = check_given("network rows cols bias_len",
                          (const void *[]){net, rows, cols, bias_len}, 4)) ||
        (rc = check_layer(net, layer)))
        return rc;
    *rows = net->layer[layer].rows;
    *cols = net->layer[layer].cols;
    *bias_len = net->layer[layer].bias_len;
    return BOLT_OK;
}

int bolt_get_params(const bolt_network *net, int32_t layer, float *weights,
                    float *bias)
{
    int rc;
    if ((rc = check_given("network weights bias", (const void *[]){net, weights, bias}, 3)) ||
        (rc = check_layer(net, layer)))
        return rc;
    const bolt_layer *l = &net->layer[layer];
    memcpy(weights, l->w, (size_t)(l->rows * l->cols) * sizeof(float));
    memcpy(bias, l->b, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

int bolt_get_bias(const bolt_network *net, int32_t layer, float *bias)
{
    int rc;
    if ((rc = check_given("network bias", (const void *[]){net, bias}, 2)) ||
        (rc = check_layer(net, layer)))
        return rc;
    const bolt_layer *l = &net->layer[layer];
    memcpy(bias, l->b, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

/* Weights and biases given to a layer are finite (set_params, set_rows). */
static int check_finite_params(int32_t layer, const float *weights, int64_t n_weights,
                               const float *bias, int64_t n_bias)
{
    for (int64_t i = 0; i < n_weights; i++)
        if (!isfinite(weights[i]))
            return bolt_fail(BOLT_EINVAL, "weights of layer %d contain NaN or infinity", layer);
    for (int64_t i = 0; i < n_bias; i++)
        if (!isfinite(bias[i]))
            return bolt_fail(BOLT_EINVAL, "bias of layer %d contains NaN or infinity", layer);
    return BOLT_OK;
}

int bolt_set_params(bolt_network *net, int32_t layer, const float *weights,
                    const float *bias)
{
    int rc;
    if ((rc = check_given("network weights bias", (const void *[]){net, weights, bias}, 3)) ||
        (rc = check_layer(net, layer)))
        return rc;
    bolt_layer *l = &net->layer[layer];
    const int64_t n = l->rows * l->cols;
    if ((rc = check_finite_params(layer, weights, n, bias, l->bias_len)))
        return rc;
    memcpy(l->w, weights, (size_t)n * sizeof(float));
    memcpy(l->b, bias, (size_t)l->bias_len * sizeof(float));
    if (l->moved)
        memset(l->moved, 1, (size_t)(n / l->pool_block));
    return BOLT_OK;
}

int bolt_sync_params(bolt_network *net, int32_t layer, float *weights, float *bias,
                     int32_t moved_only, int64_t *n_copied)
{
    int rc;
    if ((rc = check_given("network weights bias n_copied",
                          (const void *[]){net, weights, bias, n_copied}, 4)) ||
        (rc = check_layer(net, layer)))
        return rc;
    bolt_layer *l = &net->layer[layer];
    const int64_t n = l->rows * l->cols;
    memcpy(bias, l->b, (size_t)l->bias_len * sizeof(float));
    if (!l->moved) {
        memcpy(weights, l->w, (size_t)n * sizeof(float));
        *n_copied = n;
        return BOLT_OK;
    }
    const int64_t B = l->pool_block, blocks = n / B;
    if (!moved_only) {
        memcpy(weights, l->w, (size_t)n * sizeof(float));
        memset(l->moved, 0, (size_t)blocks);
        *n_copied = n;
        return BOLT_OK;
    }
    int64_t copied = 0;
    for (int64_t i = 0; i < blocks; i++)
        if (l->moved[i]) {
            memcpy(weights + i * B, l->w + i * B, (size_t)B * sizeof(float));
            l->moved[i] = 0;
            copied += B;
        }
    *n_copied = copied;
    return BOLT_OK;
}

int bolt_take_changed(bolt_network *net, int32_t layer, int32_t *rows, int64_t capacity,
                      int64_t *n_rows)
{
    int rc;
    if ((rc = check_given("network rows n_rows", (const void *[]){net, rows, n_rows}, 3)) ||
        (rc = check_layer(net, layer)))
        return rc;
    bolt_layer *l = &net->layer[layer];
    if (capacity < l->rows)
        return bolt_fail(BOLT_EINVAL, "room for %lld row ids is needed, %lld given",
                         (long long)l->rows, (long long)capacity);
    int64_t n = 0;
    for (int64_t r = 0; r < l->rows; r++)
        if (l->changed[r]) {
            rows[n++] = (int32_t)r;
            l->changed[r] = 0;
        }
    *n_rows = n;
    return BOLT_OK;
}

/* The row ids of a get_rows / set_rows call: each in range. */
static int check_rows(const bolt_layer *l, const int32_t *rows, int64_t n)
{
    if (n < 0)
        return bolt_fail(BOLT_EINVAL, "a negative number of rows");
    for (int64_t i = 0; i < n; i++)
        if (rows[i] < 0 || rows[i] >= l->rows)
            return bolt_fail(BOLT_EINVAL, "row %lld is out of range [0, %lld)",
                             (long long)rows[i], (long long)l->rows);
    return BOLT_OK;
}

/* The arguments of get_rows / set_rows: arrays are needed for n > 0 rows,
 * and layer 0's bias always; each row in range. */
static int check_row_args(const bolt_network *net, int32_t layer, const int32_t *rows,
                          int64_t n, const void *weights, const void *bias)
{
    int rc;
    if ((rc = check_given("network", (const void *[]){net}, 1)) ||
        (rc = check_layer(net, layer)) ||
        (n > 0 && (rc = check_given("rows weights", (const void *[]){rows, weights}, 2))) ||
        ((n > 0 || layer == 0) && (rc = check_given("bias", (const void *[]){bias}, 1))))
        return rc;
    return check_rows(&net->layer[layer], rows, n);
}

int bolt_get_rows(const bolt_network *net, int32_t layer, const int32_t *rows, int64_t n,
                  float *weights, float *bias)
{
    int rc;
    if ((rc = check_row_args(net, layer, rows, n, weights, bias)))
        return rc;
    const bolt_layer *l = &net->layer[layer];
    const int row_bias = layer > 0;
    for (int64_t i = 0; i < n; i++) {
        memcpy(weights + i * l->cols, l->w + (int64_t)rows[i] * l->cols,
               (size_t)l->cols * sizeof(float));
        if (row_bias)
            bias[i] = l->b[rows[i]];
    }
    if (!row_bias)
        memcpy(bias, l->b, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

int bolt_set_rows(bolt_network *net, int32_t layer, const int32_t *rows, int64_t n,
                  const float *weights, const float *bias)
{
    int rc;
    if ((rc = check_row_args(net, layer, rows, n, weights, bias)))
        return rc;
    bolt_layer *l = &net->layer[layer];
    const int row_bias = layer > 0;
    const int64_t n_bias = row_bias ? n : l->bias_len;
    if ((rc = check_finite_params(layer, weights, n * l->cols, bias, n_bias)))
        return rc;
    for (int64_t i = 0; i < n; i++) {
        memcpy(l->w + (int64_t)rows[i] * l->cols, weights + i * l->cols,
               (size_t)l->cols * sizeof(float));
        if (l->moved)
            memset(l->moved + (int64_t)rows[i] * (l->cols / l->pool_block), 1,
                   (size_t)(l->cols / l->pool_block));
        if (row_bias)
            l->b[rows[i]] = bias[i];
    }
    if (!row_bias)
        memcpy(l->b, bias, (size_t)l->bias_len * sizeof(float));
    return BOLT_OK;
}

int bolt_get_counters(const bolt_network *net, bolt_counters *out)
{
    int rc = check_given("network out", (const void *[]){net, out}, 2);
    if (rc)
        return rc;
    *out = net->ctr;
    return BOLT_OK;
}

int bolt_take_timings(bolt_network *net, bolt_timings *out)
{
    int rc = check_given("network out", (const void *[]){net, out}, 2);
    if (rc)
        return rc;
    *out = net->time;
    memset(&net->time, 0, sizeof net->time);
    return BOLT_OK;
}

int bolt_set_counters(bolt_network *net, const bolt_counters *in)
{
    int rc = check_given("network in", (const void *[]){net, in}, 2);
    if (rc)
        return rc;
    if (in->step < 0 || in->since_rebuild < 0 || in->since_redraw < 0 || in->redraws < 0 ||
        in->frozen < 0)
        return bolt_fail(BOLT_EINVAL, "counters must be non-negative");
    /* the hash functions are a pure function of (seed, redraws) */
    if (net->sparse && in->redraws != net->ctr.redraws && (rc = redraw_hash(net, in->redraws)))
        return rc;
    net->ctr = *in;
    net->ctr.frozen = in->frozen != 0;
    return BOLT_OK;
}

int bolt_get_seen(const bolt_network *net, uint8_t *out)
{
    int rc = check_given("network out", (const void *[]){net, out}, 2);
    if (rc)
        return rc;
    memcpy(out, net->seen, (size_t)net->cfg.n_outputs);
    return BOLT_OK;
}

int bolt_set_seen(bolt_network *net, const uint8_t *in)
{
    int rc = check_given("network in", (const void *[]){net, in}, 2);
    if (rc)
        return rc;
    net->n_seen = 0;
    for (int64_t j = 0; j < net->cfg.n_outputs; j++) {
        net->seen[j] = in[j] != 0;
        net->n_seen += net->seen[j];
    }
    order_fill(net);
    return BOLT_OK;
}

int bolt_get_center(const bolt_network *net, float *out)
{
    int rc = check_given("network out", (const void *[]){net, out}, 2);
    if (rc)
        return rc;
    const size_t bytes = (size_t)net->width[net->cfg.n_hidden] * sizeof(float);
    if (net->center)
        memcpy(out, net->center, bytes);
    else
        memset(out, 0, bytes); /* a dense output layer hashes nothing */
    return BOLT_OK;
}

int bolt_set_center(bolt_network *net, const float *in)
{
    int rc = check_given("network in", (const void *[]){net, in}, 2);
    if (rc)
        return rc;
    const int64_t H = net->width[net->cfg.n_hidden];
    for (int64_t c = 0; c < H; c++)
        if (!isfinite(in[c]))
            return bolt_fail(BOLT_EINVAL, "the hashing centre has a non-finite value at %lld",
                             (long long)c);
    if (net->center)
        memcpy(net->center, in, (size_t)H * sizeof(float));
    return BOLT_OK;
}

void mark_seen(bolt_network *net, const bolt_csr *Y, const int64_t *rows,
               int64_t n_rows)
{
    int fresh = 0;
    for (int64_t s = 0; s < n_rows; s++)
        for (int64_t p = csr_ptr(Y, rows[s]); p < csr_ptr(Y, rows[s] + 1); p++)
            fresh |= see_output(net, csr_col(Y, p));
    if (fresh)
        order_fill(net);
}

int bolt_set_frozen(bolt_network *net, int32_t frozen)
{
    int rc = check_given("network", (const void *[]){net}, 1);
    if (rc)
        return rc;
    net->ctr.frozen = frozen != 0;
    return BOLT_OK;
}

/* Ids the buckets hold given their counts. */
static int64_t held_total(const uint32_t *counts, int64_t nb, int32_t R)
{
    int64_t total = 0;
    for (int64_t b = 0; b < nb; b++)
        total += bucket_held(counts[b], R);
    return total;
}

int bolt_table_size(const bolt_network *net, int64_t *n_buckets, int64_t *n_ids)
{
    int rc = check_given("network n_buckets n_ids", (const void *[]){net, n_buckets, n_ids}, 3);
    if (rc)
        return rc;
    *n_buckets = 0;
    *n_ids = 0;
    if (!net->sparse)
        return BOLT_OK;
    *n_buckets = tables_n_buckets(&net->tables);
    *n_ids = held_total(net->tables.counts, *n_buckets, net->tables.R);
    return BOLT_OK;
}

/* Copies the held ids bucket by bucket between the tables' slots (R per
 * bucket) and a packed array: into the tables or out of them. */
static void copy_held(int32_t *dst, const int32_t *src, const uint32_t *counts,
                      int64_t nb, int32_t R, int into_tables)
{
    int64_t p = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t held = bucket_held(counts[b], R), slot = b * R;
        memcpy(dst + (into_tables ? slot : p), src + (into_tables ? p : slot),
               (size_t)held * sizeof(int32_t));
        p += held;
    }
}

/* Copies tables t out: counts, then the held ids bucket after bucket. */
static void get_tables(const bolt_tables *t, uint32_t *counts, int32_t *ids)
{
    const int64_t nb = tables_n_buckets(t);
    memcpy(counts, t->counts, (size_t)nb * sizeof(uint32_t));
    copy_held(ids, t->ids, counts, nb, t->R, 0);
}

/* Fills tables t from what get_tables wrote, every id checked against
 * [0, n_ids_max) first; `what` names the tables in messages. */
static int set_tables(bolt_tables *t, const uint32_t *counts, const int32_t *ids,
                      int64_t n_ids, int64_t n_ids_max, const char *what)
{
    if (n_ids < 0 || (n_ids > 0 && !ids))
        return bolt_fail(BOLT_EINVAL, "ids is missing (a NULL pointer) or n_ids is negative");
    const int64_t nb = tables_n_buckets(t), total = held_total(counts, nb, t->R);
    if (total != n_ids)
        return bolt_fail(BOLT_EINVAL, "%s contents hold %lld ids but the counts imply %lld",
                         what, (long long)n_ids, (long long)total);
    for (int64_t p = 0; p < n_ids; p++)
        if (ids[p] < 0 || ids[p] >= n_ids_max)
            return bolt_fail(BOLT_EINVAL, "%s contents hold an id outside [0, %lld)", what,
                             (long long)n_ids_max);
    memcpy(t->counts, counts, (size_t)nb * sizeof(uint32_t));
    copy_held(t->ids, ids, counts, nb, t->R, 1);
    return BOLT_OK;
}

int bolt_get_tables(const bolt_network *net, uint32_t *counts, int32_t *ids)
{
    int rc = check_given("network counts ids", (const void *[]){net, counts, ids}, 3);
    if (rc)
        return rc;
    if (net->sparse)
        get_tables(&net->tables, counts, ids);
    return BOLT_OK;
}

int bolt_set_tables(bolt_network *net, const uint32_t *counts,
                    const int32_t *ids, int64_t n_ids)
{
    int rc = check_given("network counts", (const void *[]){net, counts}, 2);
    if (rc)
        return rc;
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no tables");
    return set_tables(&net->tables, counts, ids, n_ids, net->cfg.n_outputs, "table");
}

/* ------------------------------------------------------------------------ */
/* the sparse hidden layer's tables                                           */

int bolt_hidden_table_size(const bolt_network *net, int64_t *n_buckets, int64_t *n_ids)
{
    int rc = check_given("network n_buckets n_ids", (const void *[]){net, n_buckets, n_ids}, 3);
    if (rc)
        return rc;
    *n_buckets = 0;
    *n_ids = 0;
    if (!net->hsparse)
        return BOLT_OK;
    *n_buckets = tables_n_buckets(&net->htables);
    *n_ids = held_total(net->htables.counts, *n_buckets, net->htables.R);
    return BOLT_OK;
}

int bolt_get_hidden_tables(const bolt_network *net, uint32_t *counts, int32_t *ids)
{
    int rc = check_given("network counts ids", (const void *[]){net, counts, ids}, 3);
    if (rc)
        return rc;
    if (net->hsparse)
        get_tables(&net->htables, counts, ids);
    return BOLT_OK;
}

int bolt_set_hidden_tables(bolt_network *net, const uint32_t *counts,
                           const int32_t *ids, int64_t n_ids)
{
    int rc = check_given("network counts", (const void *[]){net, counts}, 2);
    if (rc)
        return rc;
    if (!net->hsparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense hidden layer and no hidden "
                         "tables");
    return set_tables(&net->htables, counts, ids, n_ids, net->width[1], "hidden table");
}
