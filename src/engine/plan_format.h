/*
 * The compiled plan file: the optimized graph, its constants, and weights
 * already reordered into the layouts the oneDNN kernels chose, in one file
 * that is mapped read-only and used in place.
 *
 *   [header: 4 KiB] [metadata] [data: 64-byte aligned blocks, 4 KiB aligned
 *                               when 64 KiB or larger]
 *
 * All integers little-endian. Offsets in the metadata are relative to the
 * data section. The header names what the file depends on (format version,
 * CPU ISA, oneDNN version, sizes of the in-memory attribute records) and a
 * CRC-32C of the metadata; a mismatch means "recompile", never a crash.
 * Opening reads the header and the metadata only: O(nodes), not O(weights).
 *
 * Constants are stored plain (row-major) so that any consumer can use them;
 * weights that a kernel wants in another layout are stored a second time in
 * that layout, once per layout whatever the number of nodes reading them. Pages of the plain copies
 * that no kernel reads are never faulted in, so the duplication costs disk, not memory.
 */
#ifndef ROUSE_ENGINE_PLAN_FORMAT_H
#define ROUSE_ENGINE_PLAN_FORMAT_H

#include <stdint.h>

#define PLAN_MAGIC "ROUSEPLN"
/* 2: the optimized graph may hold the fused LayerNorm and GELU ops; plans
 * of version 1 lack those rewrites and are recompiled.
 * 3: graph inputs and outputs carry the names of their symbolic dims ("" for
 * none) after their flags; node records are checked by each op's descriptor
 * (a Conv kernel of 0 means "from the weight"), the records of the operator
 * families share eng_attrs, and each (constant, layout) pair is stored once. */
/* 4: the metadata names the precision the plan computes in and ends with the
 * accuracy section: how each output compares with fp32 on the validation
 * samples, and the layers kept in fp32 (plan_write.c, build_accuracy). */
#define PLAN_FORMAT_VERSION 4
#define PLAN_HEADER_SIZE 4096
#define PLAN_BLOCK_ALIGN 64
#define PLAN_PAGE_ALIGN 4096
#define PLAN_PAGE_ALIGN_FROM (64 * 1024)
/* Room for metadata and alignment in the plan size limit (plan_file.h). */
#define PLAN_SIZE_SLACK (1024 * 1024)

typedef struct plan_header {
    char magic[8];
    uint32_t format_version;
    uint32_t header_size;
    uint32_t cpu_isa; /* dnnl_cpu_isa_t the kernels were chosen for */
    uint32_t dnnl_major, dnnl_minor, dnnl_patch;
    uint32_t attrs_size;      /* sizeof(eng_attrs) */
    uint32_t postop_size;     /* sizeof(eng_postop) */
    uint32_t md_size;         /* sizeof(dnnl_memory_desc_t) */
    uint8_t model_sha256[32]; /* of the source .onnx file */
    uint64_t meta_offset, meta_size;
    uint32_t meta_crc32c; /* CRC-32C of the metadata: catches damage cheaply */
    uint32_t reserved;
    uint64_t data_offset, data_size;
    uint64_t file_size;
} plan_header;

/* Value flags in the metadata. */
enum { PLAN_VALUE_INPUT = 1, PLAN_VALUE_OUTPUT = 2, PLAN_VALUE_CONST = 4 };

#endif
