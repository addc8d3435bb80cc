/* Validation of everything a caller hands the core. Python checks first,
 * but the C side cannot trust that: a bad index here would be a read out of
 * bounds, so every exported function passes its arguments through these
 * before touching them. */
#include "network.h"

#include <math.h>
#include <string.h>

int check_given(const char *names, const void *const *ptrs, int n)
{
    const char *name = names;
    for (int i = 0; i < n; i++) {
        const size_t len = strcspn(name, " ");
        if (!ptrs[i])
            return bolt_fail(BOLT_EINVAL, "%.*s is missing (a NULL pointer)", (int)len, name);
        name += len + (name[len] == ' ');
    }
    return BOLT_OK;
}

/* Everything but the entries: types, shape and a non-decreasing indptr. */
static int csr_check_shape(const bolt_csr *m, const char *name, int64_t n_cols)
{
    if (!m)
        return bolt_fail(BOLT_EINVAL, "%s is missing", name);
    if ((m->indptr_type != BOLT_INT32 && m->indptr_type != BOLT_INT64) ||
        (m->indices_type != BOLT_INT32 && m->indices_type != BOLT_INT64) ||
        (m->data_type != BOLT_FLOAT32 && m->data_type != BOLT_FLOAT64))
        return bolt_fail(BOLT_EINVAL, "%s has an unsupported index or value type", name);
    if (m->n_rows < 0)
        return bolt_fail(BOLT_EINVAL, "%s has a negative number of rows", name);
    if (m->n_cols != n_cols)
        return bolt_fail(BOLT_EINVAL, "%s has %lld columns but the network expects %lld",
                         name, (long long)m->n_cols, (long long)n_cols);
    if (!m->indptr)
        return bolt_fail(BOLT_EINVAL, "%s has no indptr", name);
    if (csr_ptr(m, 0) != 0)
        return bolt_fail(BOLT_EINVAL, "%s indptr must start at 0", name);
    for (int64_t i = 0; i < m->n_rows; i++)
        if (csr_ptr(m, i + 1) < csr_ptr(m, i))
            return bolt_fail(BOLT_EINVAL, "%s indptr decreases at row %lld", name, (long long)i);
    if (csr_ptr(m, m->n_rows) > 0 && !m->indices)
        return bolt_fail(BOLT_EINVAL, "%s has no indices", name);
    return BOLT_OK;
}

/* Entries p0 .. p1 of a matrix csr_check_shape passed. */
static int csr_check_entries(const bolt_csr *m, const char *name, int64_t p0, int64_t p1)
{
    const int64_t n_cols = m->n_cols;
    for (int64_t p = p0; p < p1; p++) {
        int64_t c = csr_col(m, p);
        if (c < 0 || c >= n_cols)
            return bolt_fail(BOLT_EINVAL, "%s has column index %lld outside [0, %lld)",
                             name, (long long)c, (long long)n_cols);
        if (!isfinite(csr_val(m, p)))
            return bolt_fail(BOLT_EINVAL, "%s contains NaN or infinity (or a value too large for float32)", name);
    }
    return BOLT_OK;
}

int csr_check(const bolt_csr *m, const char *name, int64_t n_cols)
{
    const int rc = csr_check_shape(m, name, n_cols);
    return rc ? rc : csr_check_entries(m, name, 0, csr_ptr(m, m->n_rows));
}

int check_threads(int32_t n_threads)
{
    if (n_threads < 1 || n_threads > MAX_THREADS)
        return bolt_fail(BOLT_EINVAL, "n_threads must be in [1, %d], got %d", MAX_THREADS, n_threads);
    return BOLT_OK;
}

/* Only what a dense output layer needs; check_config adds the hashing. */
static int check_dense_config(const bolt_config *c)
{
    if (c->n_features < 1 || c->n_outputs < 1)
        return bolt_fail(BOLT_EINVAL, "n_features and n_outputs must be positive (got %d and %d)",
                         c->n_features, c->n_outputs);
    if (c->n_hidden < 1 || c->n_hidden > BOLT_MAX_HIDDEN)
        return bolt_fail(BOLT_EINVAL, "the number of hidden layers must be in [1, %d], got %d",
                         BOLT_MAX_HIDDEN, c->n_hidden);
    for (int i = 0; i < c->n_hidden; i++)
        if (c->hidden_sizes[i] < 1)
            return bolt_fail(BOLT_EINVAL, "hidden layer %d has width %d; widths must be positive",
                             i, c->hidden_sizes[i]);
    if (c->loss != BOLT_LOSS_SOFTMAX && c->loss != BOLT_LOSS_SIGMOID)
        return bolt_fail(BOLT_EINVAL, "unknown loss %d", c->loss);
    if (c->active_size < 1)
        return bolt_fail(BOLT_EINVAL, "active_size must be positive, got %d", c->active_size);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f && c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return bolt_fail(BOLT_EINVAL, "Adam betas must be in [0, 1)");
    if (!(c->epsilon > 0.0f))
        return bolt_fail(BOLT_EINVAL, "Adam epsilon must be positive");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return bolt_fail(BOLT_EINVAL, "dropout must be in [0, 1), got %g", (double)c->dropout);
    return BOLT_OK;
}

/* The sparse hidden layer's parameters, when it is sparse. */
static int check_hidden_config(const bolt_config *c)
{
    if (c->hidden_active < 0)
        return bolt_fail(BOLT_EINVAL, "hidden_active must be >= 0, got %d", c->hidden_active);
    if (c->hidden_active == 0 || c->hidden_active >= c->hidden_sizes[0])
        return BOLT_OK;
    if (c->n_hidden != 1)
        return bolt_fail(BOLT_EINVAL, "a sparse hidden layer needs exactly one hidden layer, "
                         "got %d", c->n_hidden);
    if (c->hidden_K < 1 || c->hidden_K > 4)
        return bolt_fail(BOLT_EINVAL, "hidden_K must be in [1, 4], got %d", c->hidden_K);
    if (c->hidden_L < 1 || c->hidden_L > 255)
        return bolt_fail(BOLT_EINVAL, "hidden_L must be in [1, 255], got %d", c->hidden_L);
    if (c->hidden_range_pow < 1 || c->hidden_range_pow > 24)
        return bolt_fail(BOLT_EINVAL, "hidden_range_pow must be in [1, 24], got %d",
                         c->hidden_range_pow);
    if (c->hidden_reservoir < 1 || c->hidden_reservoir > 65536)
        return bolt_fail(BOLT_EINVAL, "hidden_reservoir must be in [1, 65536], got %d",
                         c->hidden_reservoir);
    if (c->hidden_rebuild_interval < 0)
        return bolt_fail(BOLT_EINVAL, "hidden_rebuild_interval must be >= 0, got %d",
                         c->hidden_rebuild_interval);
    return BOLT_OK;
}

int check_config(const bolt_config *c)
{
    if (!c)
        return bolt_fail(BOLT_EINVAL, "config is missing");
    int rc = check_dense_config(c);
    if (!rc)
        rc = check_hidden_config(c);
    if (rc || c->active_size >= c->n_outputs)
        return rc; /* a dense output uses no hashing parameter */
    if (c->hash_family != BOLT_HASH_DWTA && c->hash_family != BOLT_HASH_SRP)
        return bolt_fail(BOLT_EINVAL, "unknown hash family %d", c->hash_family);
    if (c->hash_K < 1 || c->hash_K > 20)
        return bolt_fail(BOLT_EINVAL, "hash K must be in [1, 20], got %d", c->hash_K);
    if (c->hash_L < 1 || c->hash_L > 4096)
        return bolt_fail(BOLT_EINVAL, "hash L must be in [1, 4096], got %d", c->hash_L);
    if (c->range_pow < 1 || c->range_pow > 30)
        return bolt_fail(BOLT_EINVAL, "range_pow must be in [1, 30], got %d", c->range_pow);
    if (c->reservoir < 1)
        return bolt_fail(BOLT_EINVAL, "reservoir size must be positive, got %d", c->reservoir);
    if (c->rebuild_interval < 0 || c->redraw_interval < 0)
        return bolt_fail(BOLT_EINVAL, "rebuild and redraw intervals must be >= 0");
    if (c->batch_negatives < 0 || c->batch_negatives > c->active_size)
        return bolt_fail(BOLT_EINVAL, "batch_negatives must be in [0, active_size=%d], got %d",
                         c->active_size, c->batch_negatives);
    return BOLT_OK;
}

int check_layer(const bolt_network *net, int32_t layer)
{
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if (layer < 0 || layer >= net->n_layers)
        return bolt_fail(BOLT_EINVAL, "layer must be in [0, %d], got %d", net->n_layers - 1, layer);
    return BOLT_OK;
}

int check_inference(const bolt_network *net, const bolt_csr *X,
                    int32_t n_threads)
{
    int rc;
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if ((rc = check_threads(n_threads)))
        return rc;
    return csr_check(X, "X", net->cfg.n_features);
}

/* The largest label count of a row and input nonzeros of a batch, which
 * size the workspace; fails on a row outside X. */
static int batch_extent(const bolt_csr *X, const bolt_csr *Y,
                        const int64_t *rows, int64_t n_rows, int64_t batch,
                        int64_t *max_lab, int64_t *max_nnz)
{
    *max_lab = 0;
    *max_nnz = 0;
    for (int64_t b0 = 0; b0 < n_rows; b0 += batch) {
        int64_t nnz = 0;
        for (int64_t s = b0; s < n_rows && s < b0 + batch; s++) {
            const int64_t r = rows[s];
            if (r < 0 || r >= X->n_rows)
                return bolt_fail(BOLT_EINVAL, "row %lld is outside [0, %lld)",
                                 (long long)r, (long long)X->n_rows);
            const int64_t nlab = csr_ptr(Y, r + 1) - csr_ptr(Y, r);
            *max_lab = nlab > *max_lab ? nlab : *max_lab;
            nnz += csr_ptr(X, r + 1) - csr_ptr(X, r);
        }
        *max_nnz = nnz > *max_nnz ? nnz : *max_nnz;
    }
    if (*max_lab > INT32_MAX / 2 || *max_nnz > INT32_MAX)
        return bolt_fail(BOLT_EINVAL, "a batch has too many labels or nonzeros; use a smaller batch_size");
    return BOLT_OK;
}

/* Training reads only the listed rows of X and Y, and is called once per
 * chunk of an epoch (20 per epoch): checking every entry of both on every
 * call was most of a 100k-class fit's serial setup. */
int check_training_inputs(const bolt_network *net, const bolt_csr *X,
                          const bolt_csr *Y, const int64_t *rows,
                          int64_t n_rows, int64_t batch, int32_t n_threads,
                          int64_t *max_lab, int64_t *max_nnz)
{
    int rc;
    if (!net)
        return bolt_fail(BOLT_EINVAL, "network is missing");
    if ((rc = check_threads(n_threads)) || (rc = csr_check_shape(X, "X", net->cfg.n_features)) ||
        (rc = csr_check_shape(Y, "Y (labels)", net->cfg.n_outputs)))
        return rc;
    if (Y->n_rows != X->n_rows)
        return bolt_fail(BOLT_EINVAL, "X has %lld rows but the labels have %lld",
                         (long long)X->n_rows, (long long)Y->n_rows);
    if (n_rows < 1)
        return bolt_fail(BOLT_EINVAL, "no rows to train on");
    if (!rows)
        return bolt_fail(BOLT_EINVAL, "rows is missing (a NULL pointer)");
    if (batch < 1)
        return bolt_fail(BOLT_EINVAL, "batch_size must be positive, got %lld", (long long)batch);
    if ((rc = batch_extent(X, Y, rows, n_rows, batch, max_lab, max_nnz)))
        return rc;
    for (int64_t s = 0; s < n_rows; s++) {
        const int64_t r = rows[s];
        if ((rc = csr_check_entries(X, "X", csr_ptr(X, r), csr_ptr(X, r + 1))) ||
            (rc = csr_check_entries(Y, "Y (labels)", csr_ptr(Y, r), csr_ptr(Y, r + 1))))
            return rc;
    }
    return BOLT_OK;
}
