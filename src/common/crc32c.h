/*
 * CRC-32C (Castagnoli), table-driven. Used where a damaged file must be told
 * apart from a good one cheaply: compiled plan metadata is checked on every
 * open, and the first use of OpenSSL's SHA-256 alone costs about a
 * millisecond (provider loading), the whole budget of opening a plan.
 */
#ifndef ROUSE_COMMON_CRC32C_H
#define ROUSE_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of data[0..len), continuing from crc (start with 0). */
uint32_t rouse_crc32c(uint32_t crc, const void *data, size_t len);

#endif
