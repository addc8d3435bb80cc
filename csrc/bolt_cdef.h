/* Declarations of the public C API in a form both a C compiler and cffi's
 * cdef parser accept (no preprocessor lines; constants are enums). bolt.h
 * includes this file, so the two can never disagree. Every pointer argument
 * must be non-NULL unless it would point to zero elements. */
enum {
    BOLT_OK = 0,
    BOLT_EINVAL = -1,
    BOLT_ENOMEM = -2,
    BOLT_EINTERNAL = -3
};

enum { BOLT_LOSS_SOFTMAX = 0, BOLT_LOSS_SIGMOID = 1 };
enum { BOLT_HASH_DWTA = 0, BOLT_HASH_SRP = 1 };
enum { BOLT_INT32 = 0, BOLT_INT64 = 1 };
enum { BOLT_FLOAT32 = 0, BOLT_FLOAT64 = 1 };
enum { BOLT_MAX_HIDDEN = 8 };
typedef struct bolt_network bolt_network;

/* A CSR matrix borrowed from the caller. data may be NULL (all ones). */
typedef struct {
    int64_t n_rows;
    int64_t n_cols;
    const void *indptr;
    const void *indices;
    const void *data;
    int32_t indptr_type;  /* BOLT_INT32 or BOLT_INT64 */
    int32_t indices_type; /* BOLT_INT32 or BOLT_INT64 */
    int32_t data_type;    /* BOLT_FLOAT32 or BOLT_FLOAT64 */
} bolt_csr;

typedef struct {
    int32_t n_features;
    int32_t n_outputs;
    int32_t n_hidden;        /* hidden layers, 1..BOLT_MAX_HIDDEN */
    int32_t hidden_sizes[8]; /* BOLT_MAX_HIDDEN widths, first n_hidden used */
    int32_t loss;            /* BOLT_LOSS_* */
    int32_t active_size;     /* output neurons per training sample;
                                >= n_outputs means a dense output layer */
    int32_t hash_family;     /* BOLT_HASH_*; unused when dense */
    int32_t hash_K;          /* codes per table key */
    int32_t hash_L;          /* number of tables */
    int32_t range_pow;       /* log2 of buckets per table */
    int32_t reservoir;       /* ids kept per bucket */
    int32_t rebuild_interval; /* batches between re-insertions; 0 = never */
    int32_t redraw_interval; /* batches between new hash functions; 0 = never */
    int32_t batch_negatives; /* outputs of a training sample's active set
                                drawn from the labels of its batch's rows
                                (the rest come from the tables), 0 ..
                                active_size; unused when dense */
    uint64_t seed;
    float dropout;           /* share of hidden units dropped per training
                                sample, in [0, 1) */
    float beta1;
    float beta2;
    float epsilon;
    /* LSH-sparse first hidden layer (issue 36): units computed per sample,
       chosen by the layer's own tables over the sparse input. 0 (or the
       layer's width) = dense; sparse needs exactly one hidden layer. */
    int32_t hidden_active;
    int32_t hidden_K;        /* bin codes per table key */
    int32_t hidden_L;        /* tables; the input is cut into K * L bins */
    int32_t hidden_range_pow; /* log2 of buckets per table */
    int32_t hidden_reservoir; /* ids kept per bucket */
    int32_t hidden_rebuild_interval; /* Adam steps between re-insertions of
                                        the layer's units; 0 = never */
} bolt_config;

const char *bolt_last_error(void);

/* Threads an OpenMP region would use by default in this process (what
 * OMP_NUM_THREADS or a threadpoolctl limit allows); 1 without OpenMP. */
int bolt_max_threads(void);

/* Bytes by part of a network and one training call at their peak. */
typedef struct {
    int64_t weights;   /* parameters (weights and biases) */
    int64_t optimizer; /* Adam's two moments */
    int64_t tables;    /* hash tables, fill order, hash functions */
    int64_t buffers;   /* training workspace, table rebuilds, the rest */
    int64_t total;     /* their sum */
} bolt_memory;

/* Training counters: Adam steps taken, batches since the last rebuild and
 * redraw, redraws so far, and whether the tables are frozen. */
typedef struct {
    int64_t step;
    int64_t since_rebuild;
    int64_t since_redraw;
    int64_t redraws;
    int32_t frozen;
} bolt_counters;

/* Wall seconds training spent by phase since the last bolt_take_timings:
 * per batch, the parallel pass over samples (forward through the hidden
 * layers, hashing and retrieving the active set, the loss, backward), the
 * frozen tables' insertion of labels they missed, the Adam updates of the
 * output layer, of the hidden-to-hidden layers and of the input layer, and
 * table maintenance (rebuilds and redraws); per call, setup (checks,
 * marking labels seen, the workspace). Not part of the saved state. */
typedef struct {
    double samples;
    double missed_labels;
    double update_output;
    double update_hidden;
    double update_input;
    double tables;
    double setup;
    int64_t batches;
} bolt_timings;

/* What a network made with cfg and one training call with this batch size,
 * input nonzeros per row and thread count allocate, computed by the same
 * code that allocates them (nothing is allocated here). */
int bolt_estimate_memory(const bolt_config *cfg, int32_t batch_size,
                         int32_t nnz_per_row, int32_t n_threads,
                         bolt_memory *out);

/* A network with initialised weights. With build_tables != 0 its hash
 * tables hold its output rows (hashed on n_threads); with 0 they are left
 * empty, for a caller that fills them next (bolt_init_centroids,
 * bolt_set_tables, bolt_rebuild_tables): building them twice costs a
 * third of a 1M-output fit. Empty tables retrieve nothing. */
int bolt_create(const bolt_config *cfg, int32_t build_tables, int32_t n_threads,
                bolt_network **out);
void bolt_free(bolt_network *net);

/* The configuration the network was made with. */
int bolt_get_config(const bolt_network *net, bolt_config *out);

/* One pass over rows[0..n_rows) of (X, Y) in that order, in batches of
 * batch_size, with Adam at learning_rate. Y holds the labels of each row as
 * column indices. *loss_sum receives the summed per-sample loss. The
 * call's buffers stay with the network for the next one (see
 * bolt_release_buffers). */
int bolt_train(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
               const int64_t *rows, int64_t n_rows, int32_t batch_size,
               float learning_rate, int32_t n_threads, double *loss_sum);

/* Top-k output neurons per row of X: ids (n_rows x k) and scores
 * (probabilities; see bolt_get_seen for outputs never trained on).
 * candidates == 0 scores every neuron exactly; otherwise only neurons the
 * hash tables retrieve are scored: all of them when candidates < 0, else
 * the max(candidates, k) retrieved by most tables. */
int bolt_predict_topk(const bolt_network *net, const bolt_csr *X, int32_t k,
                      int32_t candidates, int32_t n_threads, int32_t *ids,
                      float *scores);

/* Every output, dense (n_rows x n_outputs): logits, or probabilities when
 * probabilities != 0. */
int bolt_predict_scores(const bolt_network *net, const bolt_csr *X,
                        int32_t probabilities, int32_t n_threads, float *out);

/* Activations of the last hidden layer (n_rows x width). */
int bolt_embed(const bolt_network *net, const bolt_csr *X, int32_t n_threads,
               float *out);

/* Parameters. Layer 0 has one weight row per input feature and a bias per
 * hidden unit; the other layers one row per output neuron and a bias each. */
int bolt_layer_shape(const bolt_network *net, int32_t layer, int64_t *rows,
                     int64_t *cols, int64_t *bias_len);
int bolt_get_params(const bolt_network *net, int32_t layer, float *weights,
                    float *bias);
int bolt_set_params(bolt_network *net, int32_t layer, const float *weights,
                    const float *bias);
/* bolt_get_params, for a copy kept up to date: with moved_only, a layer
 * that marks the blocks of weights Adam moves (the input layer of a
 * sparse hidden layer) copies only the blocks moved since the previous
 * call, set_params or set_rows, and weights must hold what an earlier
 * call wrote; the marks are cleared either way. Every other layer, or
 * without moved_only, copies whole. n_copied: weights copied. */
int bolt_sync_params(bolt_network *net, int32_t layer, float *weights, float *bias,
                     int32_t moved_only, int64_t *n_copied);
/* The bias of a layer alone (bias_len values). */
int bolt_get_bias(const bolt_network *net, int32_t layer, float *bias);

/* Rows of a layer since the previous call: the ids (ascending, into rows,
 * room for every row of the layer) of those an Adam step moved, then the
 * marks are cleared (skbolt.dask sends only these). */
int bolt_take_changed(bolt_network *net, int32_t layer, int32_t *rows, int64_t capacity,
                      int64_t *n_rows);
/* Parameters of some rows: weights n x cols in the order of rows; bias one
 * per row, except layer 0 (its bias is per hidden unit: all of it). */
int bolt_get_rows(const bolt_network *net, int32_t layer, const int32_t *rows, int64_t n,
                  float *weights, float *bias);
int bolt_set_rows(bolt_network *net, int32_t layer, const int32_t *rows, int64_t n,
                  const float *weights, const float *bias);

/* The timings gathered since the previous call (or creation), then zeroes
 * them. */
int bolt_take_timings(bolt_network *net, bolt_timings *out);

/* Setting the counters regenerates the hash functions that belong to
 * their redraw count. */
int bolt_get_counters(const bolt_network *net, bolt_counters *out);
int bolt_set_counters(bolt_network *net, const bolt_counters *in);

/* Which outputs have been a label of a training row (n_outputs bytes, 0 or
 * 1). Once any has, inference scores the others -inf: probability 0, last
 * in every ranking. */
int bolt_get_seen(const bolt_network *net, uint8_t *out);
int bolt_set_seen(bolt_network *net, const uint8_t *in);

/* The vector hidden activations are hashed less (width of the last hidden
 * layer; zero unless bolt_init_centroids set it, and always zero for a
 * dense output layer, which hashes nothing). Setting it does not rebuild
 * the tables. */
int bolt_get_center(const bolt_network *net, float *out);
int bolt_set_center(bolt_network *net, const float *in);

/* bolt_train keeps its buffers for the network's next call (a fit is many
 * calls); this frees them, and the next bolt_train allocates them again.
 * bolt_free frees them too. */
int bolt_release_buffers(bolt_network *net);

/* Freeze (1) or unfreeze (0) the tables; frozen tables are no longer rebuilt
 * and learn the labels their probes missed. */
int bolt_set_frozen(bolt_network *net, int32_t frozen);

/* Before training: with mu the mean last hidden vector of rows[0..n_rows),
 * the output row of every label of those rows becomes the direction from mu
 * to the mean of the rows carrying it and its bias scores a vector from mu:
 * row . h + bias = row . (h - mu), scaled so that a hidden vector one
 * spread (root mean square distance to mu) from mu in the row's direction
 * scores logit_scale. Other rows and biases stay; the tables hash h - mu
 * from then on (bolt_get_center) and are rebuilt. The same result at any
 * thread count. */
int bolt_init_centroids(bolt_network *net, const bolt_csr *X, const bolt_csr *Y,
                        const int64_t *rows, int64_t n_rows, float logit_scale,
                        int32_t n_threads);

/* bolt_init_centroids from sums gathered elsewhere (several machines'
 * shares of the rows): sums holds n_labels rows of H floats, the summed last
 * hidden vectors of the rows carrying labels[i], counts[i] (> 0) those rows;
 * total the sum of the `used` rows' hidden vectors (all-zero ones left
 * out) and sq their summed squared norms. Labels not listed keep their rows.
 * Equal sums give what bolt_init_centroids gives. */
int bolt_set_centroids(bolt_network *net, const int32_t *labels, int64_t n_labels,
                       const float *sums, const double *counts, const double *total,
                       double sq, int64_t used, float logit_scale, int32_t n_threads);

/* Re-insert every output neuron, first drawing new hash functions when
 * redraw != 0. */
int bolt_rebuild_tables(bolt_network *net, int32_t redraw, int32_t n_threads);

/* The sparse hidden layer's tables (bolt_table_size etc. for them; zero
 * sizes when the hidden layer is dense), and their rebuild from the
 * current weights. */
int bolt_hidden_table_size(const bolt_network *net, int64_t *n_buckets,
                           int64_t *n_ids);
int bolt_get_hidden_tables(const bolt_network *net, uint32_t *counts, int32_t *ids);
int bolt_set_hidden_tables(bolt_network *net, const uint32_t *counts,
                           const int32_t *ids, int64_t n_ids);
int bolt_rebuild_hidden_tables(bolt_network *net, int32_t n_threads);

/* exact != 0: inference computes every unit of a sparse hidden layer (the
 * dense, exact path); 0 (the default): only the units its tables choose,
 * as in training. Training is not affected. */
int bolt_set_hidden_exact(bolt_network *net, int32_t exact);

/* Table contents, for saving a model: per bucket its insertion count, and
 * the ids it holds in bucket order (min(count, reservoir) each). */
int bolt_table_size(const bolt_network *net, int64_t *n_buckets,
                    int64_t *n_ids);
int bolt_get_tables(const bolt_network *net, uint32_t *counts, int32_t *ids);
int bolt_set_tables(bolt_network *net, const uint32_t *counts,
                    const int32_t *ids, int64_t n_ids);
