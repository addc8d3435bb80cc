/* Which output neurons a sample looks at: the active set of a training
 * sample, and the candidates an inference query scores. Both read the same
 * buckets through the same probe and top up from the same fixed
 * permutation, so a model is queried the way it was trained.
 *
 * Marks record, per thread and output, whether this sample has taken the
 * output already. Rather than clearing an n_outputs array per sample, each
 * sample gets fresh stamp values; the array is cleared only when the
 * stamps run out, about once per four billion samples.
 */
#include "network.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

void probe_layout(arena *a, probe *all, const bolt_network *net, int64_t nt,
                  int64_t n_keys)
{
    all->keys = arena_take(a, PART_BUFFERS, n_keys * net->cfg.hash_L, sizeof(uint32_t));
    all->codes = arena_take(a, PART_BUFFERS, nt * net->hash.n_codes, sizeof(int32_t));
    all->mark = arena_zero(a, PART_BUFFERS, nt * net->cfg.n_outputs, sizeof(uint32_t));
    all->stamp = arena_zero(a, PART_BUFFERS, nt, sizeof(uint32_t));
    all->shifted = arena_take(a, PART_BUFFERS, nt * net->width[net->cfg.n_hidden], sizeof(float));
}

probe probe_at(const probe *all, const bolt_network *net, int tid,
               int64_t key_row)
{
    probe p = {all->keys + key_row * net->cfg.hash_L,
               all->codes + (int64_t)tid * net->hash.n_codes,
               all->mark + (int64_t)tid * net->cfg.n_outputs, all->stamp + tid,
               all->shifted + (int64_t)tid * net->width[net->cfg.n_hidden]};
    return p;
}

void probe_hash(const bolt_network *net, const probe *p, const float *h)
{
    const int64_t H = net->width[net->cfg.n_hidden];
    for (int64_t c = 0; c < H; c++)
        p->shifted[c] = h[c] - net->center[c];
    hash_keys(&net->hash, p->shifted, p->keys, p->codes);
    tables_prefetch(&net->tables, p->keys);
}

/* Reserves `width` fresh stamp values for one sample and returns the first,
 * base. Stamps only grow between clears, so mark[id] >= base means "taken
 * by this sample"; the values above base can carry a small count. */
static uint32_t next_stamp(const bolt_network *net, const probe *p,
                           uint32_t width)
{
    if (*p->stamp >= UINT32_MAX - width) {
        memset(p->mark, 0, (size_t)net->cfg.n_outputs * sizeof(uint32_t));
        *p->stamp = 0;
    }
    const uint32_t base = *p->stamp + 1;
    *p->stamp += width;
    return base;
}

/* Deterministic fill: walk the fixed permutation from an offset the hash
 * keys choose, skipping ids this sample already took (mark >= base), until
 * n reaches k; filled ids are marked `value`. */
static int32_t fill_active(const bolt_network *net, const probe *p,
                           uint32_t base, uint32_t value, int32_t *ids,
                           int32_t n, int32_t k)
{
    const int64_t C = net->cfg.n_outputs, span = fill_span(net);
    const uint32_t *keys = p->keys;
    uint32_t *mark = p->mark;
    uint64_t h = rng_mix(((uint64_t)keys[0] << 32) ^ keys[net->cfg.hash_L - 1]);
    /* round the seen outputs from a place the keys pick, then (when they
     * are fewer than k) the others in order: every output once at most */
    int64_t pos = (int64_t)(h % (uint64_t)span);
    for (int64_t i = 0; i < C && n < k; i++) {
        int32_t id = net->fill_order[i < span ? pos : i];
        if (mark[id] < base) {
            mark[id] = value;
            ids[n++] = id;
        }
        pos = pos + 1 == span ? 0 : pos + 1;
    }
    return n;
}

/* Adds what the buckets hold to ids[0..n) up to k, from a table the sample
 * picks so that truncation does not always favour the same tables. A label
 * (marked lab) that a bucket holds is marked seen. */
static int32_t take_buckets(const bolt_network *net, const probe *p,
                            uint32_t lab, uint32_t seen, int32_t *ids,
                            int32_t n, int32_t k)
{
    const int32_t L = net->cfg.hash_L;
    uint32_t *mark = p->mark;
    const int32_t first = (int32_t)(p->keys[0] % (uint32_t)L);
    for (int32_t t = 0; t < L; t++) {
        const int32_t l = first + t < L ? first + t : first + t - L;
        const int32_t *bucket;
        const int32_t cnt = tables_get(&net->tables, l, p->keys[l], &bucket);
        for (int32_t j = 0; j < cnt; j++) {
            const int32_t id = bucket[j];
            if (mark[id] == lab) {
                mark[id] = seen; /* a label the tables found */
            } else if (mark[id] != seen && n < k) {
                mark[id] = seen;
                ids[n++] = id;
            }
        }
        /* frozen tables must look at every bucket to learn which labels
         * were missed; otherwise a full active set ends the search */
        if (n >= k && !net->ctr.frozen)
            break;
    }
    return n;
}

/* Adds negatives drawn from the labels of the batch's rows (a row, then
 * one of its labels), not taken yet, until n reaches k. An output is so
 * drawn about as often as it is a label, which is where the tables fall
 * short: they offer only outputs close to the sample, so an output that
 * is often right elsewhere is rarely told where it is wrong and exact
 * scoring ranks it too high (measured in _rules.batch_negatives). The
 * tries are bounded; the fill completes the set. */
static int32_t take_batch_labels(const probe *p, uint32_t lab, uint32_t seen,
                                 const negative_source *neg, int32_t *ids,
                                 int32_t n, int32_t k)
{
    uint32_t *mark = p->mark;
    for (int32_t t = 0; n < k && t < 2 * k; t++) {
        const uint64_t r = rng_at(neg->draw, 0, (uint64_t)t);
        const int64_t row = neg->rows[rng_below(r, (uint32_t)neg->n_rows)];
        const int64_t y0 = csr_ptr(neg->Y, row), ny = csr_ptr(neg->Y, row + 1) - y0;
        if (ny == 0)
            continue;
        const int32_t id = (int32_t)csr_col(neg->Y, y0 + rng_below(rng_mix(r), (uint32_t)ny));
        if (mark[id] < lab) { /* neither a label of this sample nor taken */
            mark[id] = seen;
            ids[n++] = id;
        }
    }
    return n;
}

/* The active output neurons of a training sample whose keys p holds: its
 * distinct labels first (*n_labels of them), then what its buckets hold,
 * then batch_negatives drawn from the batch's labels, then
 * the deterministic fill. Returns how many; with frozen tables the labels
 * no bucket held go to missed (*n_missed of them). */
int32_t choose_active(const bolt_network *net, const probe *p, const negative_source *neg,
                      const int32_t *labels, int32_t nl, int32_t *ids,
                      int32_t *n_labels, int32_t *missed, int32_t *n_missed)
{
    uint32_t *mark = p->mark;
    const uint32_t lab = next_stamp(net, p, 2), seen = lab + 1;
    int32_t n = 0;
    for (int32_t j = 0; j < nl; j++) {
        if (mark[labels[j]] != lab) {
            mark[labels[j]] = lab;
            ids[n++] = labels[j];
        }
    }
    const int32_t n_lab = n;
    *n_labels = n_lab;
    const int32_t k = (int32_t)(net->cfg.active_size > n_lab ? net->cfg.active_size : n_lab);
    const int32_t u = net->cfg.batch_negatives;
    n = take_buckets(net, p, lab, seen, ids, n, k - u > n_lab ? k - u : n_lab);
    int32_t nm = 0;
    if (net->ctr.frozen) {
        for (int32_t j = 0; j < n_lab; j++)
            if (mark[ids[j]] == lab)
                missed[nm++] = ids[j];
    }
    *n_missed = nm;
    if (u > 0)
        n = take_batch_labels(p, lab, seen, neg, ids, n, k);
    return fill_active(net, p, lab, seen, ids, n, k);
}

/* Keeps the `keep` of cand[0..n) that most tables returned, by counting
 * selection: the threshold count t with at least `keep` candidates at or
 * above it; ties at t go in retrieval order. */
static int32_t keep_most_retrieved(const bolt_network *net, const probe *p,
                                   uint32_t base, int32_t *cand, int32_t n,
                                   int32_t keep, int32_t *hist)
{
    const int32_t L = net->cfg.hash_L;
    const uint32_t *mark = p->mark;
    memset(hist, 0, (size_t)(L + 2) * sizeof(int32_t));
    for (int32_t j = 0; j < n; j++)
        hist[mark[cand[j]] - base]++;
    int32_t t = L + 1, above = 0;
    while (t > 1 && above + hist[t] < keep)
        above += hist[t--];
    int32_t at_t = keep - above, m = 0;
    for (int32_t j = 0; j < n; j++) {
        const uint32_t c = mark[cand[j]] - base;
        if (c > (uint32_t)t || (c == (uint32_t)t && at_t-- > 0))
            cand[m++] = cand[j];
    }
    return m;
}

/* Candidates the tables retrieve for the keys p holds, deduplicated. When
 * more than `keep` come back (keep > 0), only the `keep` found in the most
 * tables stay: a neuron that collides with the query in many tables is
 * likely to score high, and this bounds the dot products per query. When
 * there are fewer than `want`, the deterministic fill tops them up. */
int32_t sparse_candidates(const bolt_network *net, const probe *p,
                          int32_t *cand, int64_t cap, int32_t want,
                          int32_t keep, int32_t *hist)
{
    const int32_t L = net->cfg.hash_L;
    uint32_t *mark = p->mark;
    /* mark[id] - base is how many tables returned id (1 .. L) */
    const uint32_t base = next_stamp(net, p, (uint32_t)L + 2);
    int32_t n = 0;
    for (int32_t l = 0; l < L; l++) {
        const int32_t *bucket;
        const int32_t cnt = tables_get(&net->tables, l, p->keys[l], &bucket);
        for (int32_t j = 0; j < cnt; j++) {
            const int32_t id = bucket[j];
            if (mark[id] >= base) {
                /* a bucket may hold an id twice; counts stop at L + 1 */
                if (mark[id] < base + (uint32_t)L + 1)
                    mark[id]++;
            } else if (n < cap) {
                mark[id] = base + 1;
                cand[n++] = id;
            }
        }
    }
    if (keep > 0 && n > keep)
        n = keep_most_retrieved(net, p, base, cand, n, keep, hist);
    if (n < want)
        n = fill_active(net, p, base, base + 1, cand, n, want);
    return n;
}

int64_t candidate_cap(const bolt_network *net)
{
    int64_t cap = (int64_t)net->cfg.hash_L * net->cfg.reservoir;
    return cap < net->cfg.n_outputs ? cap : net->cfg.n_outputs;
}

/* ------------------------------------------------------------------------ */
/* inspection (bolt_debug.h)                                                  */

int bolt_hash_keys(const bolt_network *net, const float *vectors, int64_t n,
                   uint32_t *keys)
{
    int rc = check_given("network", (const void *[]){net}, 1);
    if (rc)
        return rc;
    if (n < 0)
        return bolt_fail(BOLT_EINVAL, "n must be non-negative, got %lld", (long long)n);
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no hash functions");
    if (n > 0 && (rc = check_given("vectors keys", (const void *[]){vectors, keys}, 2)))
        return rc;
    const int64_t H = net->width[net->cfg.n_hidden];
    int32_t *codes = malloc((size_t)net->hash.n_codes * sizeof(int32_t));
    if (!codes)
        return bolt_fail(BOLT_ENOMEM, "out of memory hashing");
    for (int64_t i = 0; i < n; i++)
        hash_keys(&net->hash, vectors + i * H, keys + i * net->cfg.hash_L, codes);
    free(codes);
    return BOLT_OK;
}

typedef struct {
    probe p;
    float *h;
    int32_t *cand;
} candidate_bufs;

static void candidate_layout(arena *a, void *vbufs, const void *vnet)
{
    candidate_bufs *b = vbufs;
    const bolt_network *net = vnet;
    probe_layout(a, &b->p, net, 1, 1);
    b->h = arena_take(a, PART_BUFFERS, sum_width(&net->cfg), sizeof(float));
    b->cand = arena_take(a, PART_BUFFERS, candidate_cap(net), sizeof(int32_t));
}

int bolt_candidates(const bolt_network *net, const bolt_csr *X, int64_t row,
                    int32_t *out, int64_t cap, int64_t *n_out)
{
    int rc;
    if ((rc = check_given("network X n_out", (const void *[]){net, X, n_out}, 3)) ||
        (rc = check_inference(net, X, 1)))
        return rc;
    if (cap < 0 || (cap > 0 && !out))
        return bolt_fail(BOLT_EINVAL, "out is missing (a NULL pointer) or cap is negative");
    if (!net->sparse)
        return bolt_fail(BOLT_EINVAL, "this network has a dense output layer and no tables");
    if (row < 0 || row >= X->n_rows)
        return bolt_fail(BOLT_EINVAL, "row %lld is outside [0, %lld)", (long long)row,
                         (long long)X->n_rows);
    candidate_bufs b;
    void *block;
    if ((rc = arena_build(candidate_layout, &b, net, 0, &block, "candidate buffers")))
        return rc;
    probe_hash(net, &b.p, hidden_infer(net, X, row, b.h));
    int32_t n = sparse_candidates(net, &b.p, b.cand, candidate_cap(net), 0, 0, NULL);
    if (n > 0 && cap > 0)
        memcpy(out, b.cand, (size_t)(n < cap ? n : cap) * sizeof(int32_t));
    *n_out = n;
    free(block);
    return BOLT_OK;
}
