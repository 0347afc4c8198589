/* OpenMP probes for the Cython core: the same answers whether or not it was built with OpenMP. */
#ifndef AUTOFUSE_OMP_H
#define AUTOFUSE_OMP_H
#ifdef _OPENMP
#include <omp.h>
static int af_openmp_enabled(void) { return 1; }
static int af_max_threads(void) { return omp_get_max_threads(); }
#else
static int af_openmp_enabled(void) { return 0; }
static int af_max_threads(void) { return 1; }
#endif
#endif
