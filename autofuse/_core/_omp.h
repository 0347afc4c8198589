/* Whether the Cython core was built with OpenMP. */
#ifndef AUTOFUSE_OMP_H
#define AUTOFUSE_OMP_H
#ifdef _OPENMP
static int af_openmp_enabled(void) { return 1; }
#else
static int af_openmp_enabled(void) { return 0; }
#endif
#endif
