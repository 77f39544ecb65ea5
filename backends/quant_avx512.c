/*
 * quant_avx512.c - AVX-512 (F, BW, VL, VNNI) matmul kernels.
 */
#include "backends/quant_impl.h"

void quant_avx512_kernels(quant_kernels *k)
{
    (void)k;
}
