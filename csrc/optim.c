/* Adam, applied only to the rows a batch touched.
 *
 * Rows no sample touched keep their moments as they were (lazy Adam: their
 * moments are not decayed), which is what makes a step cost O(active set)
 * rather than O(model). The bias correction belongs to the global step and
 * is folded into the learning rate once per step (adam_at_step).
 *
 * Which rows a batch touched, and their gradients, are gathered in grad.c:
 * that is bookkeeping of the batch, the same whether the rows then take an
 * Adam step or are handed to a gradient check.
 */
#include "network.h"

#include <math.h>

KERNEL void adam_step(float *w, float *m, float *v, const float *g, int64_t n,
                      const bolt_adam *a)
{
    const float b1 = a->beta1, b2 = a->beta2, eps = a->epsilon, lr = a->lr;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] -= lr * mi / (sqrtf(vi) + eps);
    }
}

bolt_adam adam_at_step(const bolt_config *c, float learning_rate,
                       int64_t step)
{
    const double t = (double)step;
    bolt_adam adam = {c->beta1, c->beta2, c->epsilon,
                      (float)(learning_rate * sqrt(1.0 - pow(c->beta2, t)) /
                              (1.0 - pow(c->beta1, t)))};
    return adam;
}
