/* skbolt C core: the one public API.
 *
 * A network is an opaque handle. Every function returns an int status
 * (BOLT_OK or a negative error kind) and, on error, leaves a message for the
 * calling thread in bolt_last_error(). Nothing here aborts, prints or keeps
 * state shared between networks; the thread count is an argument of each call.
 *
 * Matrices cross the boundary as CSR triplets whose index and value types are
 * declared in bolt_csr, so callers never need to convert or densify them.
 */
#ifndef SKBOLT_BOLT_H
#define SKBOLT_BOLT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "bolt_cdef.h"

#ifdef __cplusplus
}
#endif

#endif
