# The compiled datapath of sriov: every kernel releases the GIL, allocates nothing per frame,
# and cannot be crashed by any input bytes (shapes and bounds are checked once per batch).
# Compiler directives live in setup.py. Each kernel has a plain-Python twin in sriov/golden/.

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

include "_fp_filters.pxi"
include "_fp_classify.pxi"
include "_fp_rx.pxi"
include "_fp_tx.pxi"
include "_fp_engine.pxi"
include "_fp_napi.pxi"
