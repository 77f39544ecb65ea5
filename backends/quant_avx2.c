/*
 * quant_avx2.c - AVX2/FMA/F16C matmul kernels (run-time dispatched from
 * quant.c; compiled with target attributes, no -march).
 */
#include "backends/quant_impl.h"

void quant_avx2_kernels(quant_kernels *k)
{
    (void)k;
}
