/* Fully connected layers: storage, initialisation and the forward pass.
 *
 * The input layer keeps one row of hidden-width weights per input feature,
 * so a sparse sample costs one axpy per nonzero. Every other layer keeps one
 * row per output neuron, so the sampled output layer reads only the rows of
 * its active neurons.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

int layer_alloc(bolt_layer *l, int64_t rows, int64_t cols, int64_t bias_len)
{
    memset(l, 0, sizeof *l);
    l->rows = rows;
    l->cols = cols;
    l->bias_len = bias_len;
    size_t nw = (size_t)rows * (size_t)cols, nb = (size_t)bias_len;
    l->w = malloc(nw * sizeof(float));
    l->mw = calloc(nw, sizeof(float));
    l->vw = calloc(nw, sizeof(float));
    l->b = calloc(nb, sizeof(float));
    l->mb = calloc(nb, sizeof(float));
    l->vb = calloc(nb, sizeof(float));
    if (!l->w || !l->mw || !l->vw || !l->b || !l->mb || !l->vb) {
        layer_free(l);
        return BOLT_ENOMEM;
    }
    return BOLT_OK;
}

void layer_free(bolt_layer *l)
{
    free(l->w);
    free(l->mw);
    free(l->vw);
    free(l->b);
    free(l->mb);
    free(l->vb);
    memset(l, 0, sizeof *l);
}

/* Glorot-uniform weights, zero biases: the scale sklearn's MLP uses for
 * ReLU networks, drawn from a counter RNG so each weight depends only on
 * (seed, layer, position). */
void layer_init(bolt_layer *l, uint64_t seed, int index, int64_t fan_in,
                int64_t fan_out)
{
    const float bound = sqrtf(6.0f / (float)(fan_in + fan_out));
    const int64_t n = l->rows * l->cols;
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

void relu(float *z, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}
