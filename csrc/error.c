/* The error channel: a message per calling thread, so that concurrent calls
 * on different networks (or the same one, for inference) never overwrite
 * each other's reason for failing. Kept apart from everything else because
 * every other file reports through bolt_fail. */
#include "network.h"

#include <stdarg.h>
#include <stdio.h>

#if defined(_MSC_VER)
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL _Thread_local
#endif

static THREAD_LOCAL char last_error[512];

const char *bolt_last_error(void) { return last_error; }

int bolt_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int bolt_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}
