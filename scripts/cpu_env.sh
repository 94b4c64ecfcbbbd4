# Sourced by the scripts that run LibTorch on CPU. Debian's OpenBLAS picks its kernels from the CPU model; on virtual
# machines that hide the model it falls back to the 2004-era Prescott kernels (measured: 2x slower training steps).
# Name the kernel family from the instruction-set flags instead, unless the user already chose.
if [[ -z "${OPENBLAS_CORETYPE:-}" && -r /proc/cpuinfo ]]; then
  if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
