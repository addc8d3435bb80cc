/* Entry points for tests only: a gradient without an update, and what the
 * hash functions and tables give for given vectors. Like bolt_cdef.h, this
 * file is read by cffi's cdef parser too, so it holds no preprocessor
 * lines; include it after bolt.h. */

/* Gradient of the mean loss over rows (one batch, no update) with respect to
 * layer `layer` (0 = input layer, n_hidden = output layer), written densely
 * into weights-shaped grad_w and bias-shaped grad_b. */
int bolt_gradient(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                  const int64_t *rows, int64_t n_rows, int32_t layer,
                  int32_t n_threads, float *grad_w, float *grad_b,
                  double *loss_sum);

/* The table keys of n vectors of the last hidden width (n x L). */
int bolt_hash_keys(const bolt_network *net, const float *vectors, int64_t n,
                   uint32_t *keys);

/* The deduplicated ids the tables retrieve for one row of X: the first
 * min(cap, *n_out) of them go to out, *n_out counts all. */
int bolt_candidates(const bolt_network *net, const bolt_csr *X, int64_t row,
                    int32_t *out, int64_t cap, int64_t *n_out);

/* The active units the sparse hidden layer chooses for one row of X at
 * training step `step` (ascending ids; *n_out of them, at most cap). */
int bolt_hidden_active(const bolt_network *net, const bolt_csr *X, int64_t row,
                       int64_t step, int32_t *out, int64_t cap, int64_t *n_out);
