/*
 * The request lines of a batch file (see batch_lines.h).
 */
#include "store/batch_lines.h"

#include <string.h>

int batch_next_line(const char *buf, size_t size, bool whole, size_t *off, int64_t *lineno,
                    size_t *line_off, size_t *len)
{
    while (*off < size) {
        const char *line = buf + *off;
        const char *nl = memchr(line, '\n', size - *off);
        if (!nl && !whole) return 0;
        size_t got = nl ? (size_t)(nl - line) + 1 : size - *off;
        (*lineno)++;
        size_t l = got;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            l--;
        size_t lead = 0;
        while (lead < l && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        size_t at = *off;
        *off += got;
        if (lead == l) continue;
        *line_off = at;
        *len = l;
        return 1;
    }
    return 0;
}
