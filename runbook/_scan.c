/* runbook._scan: sshd lines matched by PCRE2's JIT, a batch at a time, without the GIL.
 *
 * runbook.logframe hands a batch of lines (one buffer, and where each line begins) to a
 * Scanner made of the very patterns runbook.logs matches with Python's re: the header
 * patterns whose reading is certain, then sshd's messages, tried in the order
 * logs._message tries them (those of the message's first word, then those of each needle
 * found in it). PCRE2 is a backtracking engine like re: for these patterns (ASCII classes,
 * UTF mode, no flags) it finds the same match and the same groups. What it finds comes
 * back as byte offsets, and the strings as Arrow views into the batch (views()).
 *
 * A line PCRE2 cannot answer for (an error such as its match limit) is left to the
 * Python reader, as is every line whose header is not certain.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* kind[i]: a message's index in MESSAGES, or one of these. */
#define NO_MESSAGE (-1) /* a certain sshd header, a message none of the patterns reads */
#define NOT_CERTAIN (-2) /* for the Python reader */
#define BINARY (-3) /* a NUL byte: unreadable */

typedef struct {
    pcre2_code *code;
    uint32_t groups;
    int32_t *slots; /* slots[g - 1]: the field group g fills, -1 for none */
    int32_t head;   /* header patterns: the group that ends where the message begins */
} Pattern;

typedef struct {
    const char *text;
    Py_ssize_t size;
    Py_ssize_t first; /* its candidates: candidates[first .. first + count) */
    Py_ssize_t count;
} Key;

typedef struct {
    PyObject_HEAD
    Pattern *headers;
    Py_ssize_t nheaders;
    Pattern *messages;
    Py_ssize_t nmessages;
    pcre2_code *needle;
    Key *words;
    Py_ssize_t nwords;
    Key *needles;
    Py_ssize_t nneedles;
    int32_t *candidates;
    PyObject *keep; /* the word and needle strings the keys point into */
    Py_ssize_t fields;
    Py_ssize_t max_chars;
    uint32_t max_groups;
    int jit; /* every pattern JIT-compiled: matched by pcre2_jit_match, without its checks */
} Scanner;

static void free_patterns(Pattern *patterns, Py_ssize_t count) {
    if (patterns == NULL)
        return;
    for (Py_ssize_t i = 0; i < count; i++) {
        pcre2_code_free(patterns[i].code);
        PyMem_Free(patterns[i].slots);
    }
    PyMem_Free(patterns);
}

static void Scanner_dealloc(Scanner *self) {
    free_patterns(self->headers, self->nheaders);
    free_patterns(self->messages, self->nmessages);
    pcre2_code_free(self->needle);
    PyMem_Free(self->words);
    PyMem_Free(self->needles);
    PyMem_Free(self->candidates);
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A pattern compiled (UTF, LF lines) and JIT-compiled where the platform has a JIT;
 * *jitted is cleared when it has not. */
static pcre2_code *compile(PyObject *source, int *jitted) {
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(source, &size);
    if (text == NULL)
        return NULL;
    pcre2_compile_context *context = pcre2_compile_context_create(NULL);
    pcre2_set_newline(context, PCRE2_NEWLINE_LF);
    int error;
    PCRE2_SIZE offset;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)text, (PCRE2_SIZE)size, PCRE2_UTF, &error, &offset, context);
    pcre2_compile_context_free(context);
    if (code == NULL) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        PyErr_Format(PyExc_ValueError, "PCRE2 cannot compile %R at %zu: %s", source,
                     (size_t)offset, (char *)message);
        return NULL;
    }
    if (pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) != 0)
        *jitted = 0; /* the interpreter, then, for all */
    return code;
}

/* (pattern, slots[, head]) tuples to Patterns. */
static Pattern *patterns(Scanner *self, PyObject *list, Py_ssize_t *count, int headed) {
    PyObject *items = PySequence_Fast(list, "patterns must be a sequence");
    if (items == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    Pattern *out = PyMem_Calloc(n ? n : 1, sizeof(Pattern));
    if (out == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return NULL;
    }
    *count = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *source, *slots;
        int head = -1;
        PyObject *item = PySequence_Fast_GET_ITEM(items, i);
        if (!(headed ? PyArg_ParseTuple(item, "UOi", &source, &slots, &head)
                     : PyArg_ParseTuple(item, "UO", &source, &slots)))
            goto fail;
        if ((out[i].code = compile(source, &self->jit)) == NULL)
            goto fail;
        pcre2_pattern_info(out[i].code, PCRE2_INFO_CAPTURECOUNT, &out[i].groups);
        PyObject *numbers = PySequence_Fast(slots, "slots must be a sequence");
        if (numbers == NULL)
            goto fail;
        if (PySequence_Fast_GET_SIZE(numbers) != (Py_ssize_t)out[i].groups) {
            Py_DECREF(numbers);
            PyErr_Format(PyExc_ValueError, "%R has %u groups for PCRE2, %zd slots given",
                         source, out[i].groups, PySequence_Fast_GET_SIZE(numbers));
            goto fail;
        }
        out[i].slots = PyMem_Calloc(out[i].groups ? out[i].groups : 1, sizeof(int32_t));
        for (uint32_t g = 0; g < out[i].groups; g++) {
            long slot = PyLong_AsLong(PySequence_Fast_GET_ITEM(numbers, g));
            if (slot >= self->fields || (slot == -1 && PyErr_Occurred())) {
                Py_DECREF(numbers);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "a slot beyond the fields");
                goto fail;
            }
            out[i].slots[g] = (int32_t)slot;
        }
        Py_DECREF(numbers);
        out[i].head = head;
        if (out[i].groups > self->max_groups)
            self->max_groups = out[i].groups;
    }
    Py_DECREF(items);
    return out;
fail:
    Py_DECREF(items);
    free_patterns(out, n);
    *count = 0;
    return NULL;
}

/* (text, [message indices]) pairs to keys, their candidates appended at *used. */
static Key *keys(Scanner *self, PyObject *list, Py_ssize_t *count, Py_ssize_t *used) {
    PyObject *items = PySequence_Fast(list, "keys must be a sequence");
    if (items == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    Key *out = PyMem_Calloc(n ? n : 1, sizeof(Key));
    if (out == NULL) {
        Py_DECREF(items);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text, *indices;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, i), "UO", &text, &indices))
            goto fail;
        if (PyList_Append(self->keep, text) < 0)
            goto fail;
        if ((out[i].text = PyUnicode_AsUTF8AndSize(text, &out[i].size)) == NULL)
            goto fail;
        PyObject *numbers = PySequence_Fast(indices, "indices must be a sequence");
        if (numbers == NULL)
            goto fail;
        Py_ssize_t m = PySequence_Fast_GET_SIZE(numbers);
        int32_t *grown = PyMem_Realloc(self->candidates, (*used + m + 1) * sizeof(int32_t));
        if (grown == NULL) {
            Py_DECREF(numbers);
            PyErr_NoMemory();
            goto fail;
        }
        self->candidates = grown;
        out[i].first = *used;
        out[i].count = m;
        for (Py_ssize_t j = 0; j < m; j++) {
            long index = PyLong_AsLong(PySequence_Fast_GET_ITEM(numbers, j));
            if (index < 0 || index >= self->nmessages) {
                Py_DECREF(numbers);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_ValueError, "a message index out of range");
                goto fail;
            }
            self->candidates[(*used)++] = (int32_t)index;
        }
        Py_DECREF(numbers);
    }
    Py_DECREF(items);
    *count = n;
    return out;
fail:
    Py_DECREF(items);
    PyMem_Free(out);
    return NULL;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"headers", "messages", "words", "needle", "needles",
                            "fields",  "max_chars", NULL};
    PyObject *headers, *messages, *words, *needle, *needles;
    Py_ssize_t used = 0;
    if (self->keep != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Scanner is made once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOUOnn", names, &headers, &messages, &words,
                                     &needle, &needles, &self->fields, &self->max_chars))
        return -1;
    if (self->fields < 0 || self->max_chars < 1) {
        PyErr_SetString(PyExc_ValueError, "fields and max_chars must be positive");
        return -1;
    }
    if ((self->keep = PyList_New(0)) == NULL)
        return -1;
    self->jit = 1;
    if ((self->headers = patterns(self, headers, &self->nheaders, 1)) == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < self->nheaders; i++) {
        if (self->headers[i].head < 1 || (uint32_t)self->headers[i].head > self->headers[i].groups) {
            PyErr_SetString(PyExc_ValueError, "a header pattern's head is not one of its groups");
            return -1;
        }
    }
    if ((self->messages = patterns(self, messages, &self->nmessages, 0)) == NULL)
        return -1;
    if ((self->needle = compile(needle, &self->jit)) == NULL)
        return -1;
    if ((self->words = keys(self, words, &self->nwords, &used)) == NULL)
        return -1;
    if ((self->needles = keys(self, needles, &self->nneedles, &used)) == NULL)
        return -1;
    return 0;
}

static const Key *find(const Key *keys, Py_ssize_t count, const char *text, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < count; i++)
        if (keys[i].size == size && memcmp(keys[i].text, text, (size_t)size) == 0)
            return &keys[i];
    return NULL;
}

typedef struct {
    pcre2_match_data *data;
    pcre2_match_context *context;
    pcre2_jit_stack *stack;
    int jit;
} Matcher;

/* 1: matched, 0: not, -1: PCRE2 could not tell (an error, a limit). */
static int match(const Matcher *m, const pcre2_code *code, const char *text, Py_ssize_t size,
                 Py_ssize_t start) {
    int rc = m->jit ? pcre2_jit_match(code, (PCRE2_SPTR)text, (PCRE2_SIZE)size,
                                      (PCRE2_SIZE)start, 0, m->data, m->context)
                    : pcre2_match(code, (PCRE2_SPTR)text, (PCRE2_SIZE)size, (PCRE2_SIZE)start,
                                  PCRE2_NO_UTF_CHECK, m->data, m->context);
    return rc > 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* The groups of the last match, as offsets into the batch, into their fields' slots. */
static void note(const Matcher *m, const Pattern *p, Py_ssize_t base, int64_t *spans,
                 Py_ssize_t stride) {
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(m->data);
    for (uint32_t g = 1; g <= p->groups; g++) {
        int32_t slot = p->slots[g - 1];
        if (slot < 0 || ovector[2 * g] == PCRE2_UNSET)
            continue;
        spans[2 * slot * stride] = base + (int64_t)ovector[2 * g];
        spans[(2 * slot + 1) * stride] = base + (int64_t)ovector[2 * g + 1];
    }
}

/* A key's candidates tried in order: the index that matched, -1 for none, -2 for an error. */
static int try_all(const Scanner *self, const Matcher *m, const Key *key, const char *msg,
                   Py_ssize_t size, Py_ssize_t base, int64_t *spans, Py_ssize_t stride) {
    for (Py_ssize_t j = 0; j < key->count; j++) {
        int32_t index = self->candidates[key->first + j];
        int rc = match(m, self->messages[index].code, msg, size, 0);
        if (rc < 0)
            return -2;
        if (rc) {
            note(m, &self->messages[index], base, spans, stride);
            return index;
        }
    }
    return -1;
}

/* One line: its kind, and its fields into spans (all unset on entry; a field's start at
 * spans[2 * slot * stride], its end at spans[(2 * slot + 1) * stride]). */
static int line(const Scanner *self, const Matcher *m, const char *data, Py_ssize_t start,
                Py_ssize_t stop, int64_t *spans, Py_ssize_t stride) {
    const char *text = data + start;
    Py_ssize_t size = stop - start, h, msg = -1;
    for (h = 0; h < self->nheaders; h++) {
        int rc = match(m, self->headers[h].code, text, size, 0);
        if (rc < 0)
            return NOT_CERTAIN;
        if (rc) {
            note(m, &self->headers[h], start, spans, stride);
            msg = (Py_ssize_t)pcre2_get_ovector_pointer(m->data)[2 * self->headers[h].head + 1];
            break;
        }
    }
    if (msg < 0)
        return NOT_CERTAIN;
    const char *said = text + msg;
    Py_ssize_t length = size - msg, skip = 0;
    if (length >= 7 && (memcmp(said, "error: ", 7) == 0 || memcmp(said, "fatal: ", 7) == 0))
        skip = 7;
    const char *space = memchr(said + skip, ' ', (size_t)(length - skip));
    Py_ssize_t word = space ? space - (said + skip) : length - skip;
    const Key *key = find(self->words, self->nwords, said + skip, word);
    if (key != NULL) {
        int found = try_all(self, m, key, said, length, start + msg, spans, stride);
        if (found != -1)
            return found == -2 ? NOT_CERTAIN : found;
    }
    /* The needles, as re.finditer finds them: left to right, never overlapping. */
    Py_ssize_t at = 0;
    while (at <= length) {
        int rc = match(m, self->needle, said, length, at);
        if (rc < 0)
            return NOT_CERTAIN;
        if (!rc)
            break;
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(m->data);
        Py_ssize_t begin = (Py_ssize_t)ovector[0], end = (Py_ssize_t)ovector[1];
        const Key *hit = find(self->needles, self->nneedles, said + begin, end - begin);
        if (hit != NULL) {
            int found = try_all(self, m, hit, said, length, start + msg, spans, stride);
            if (found != -1)
                return found == -2 ? NOT_CERTAIN : found;
        }
        at = end;
        if (end == begin) { /* an empty match (no needle is one): on by one character */
            at++;
            while (at < length && ((unsigned char)said[at] & 0xC0) == 0x80)
                at++;
        }
    }
    return NO_MESSAGE;
}

static int buffer(PyObject *object, Py_buffer *view, int writable, Py_ssize_t item,
                  Py_ssize_t items, const char *name) {
    if (PyObject_GetBuffer(object, view, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0)
        return -1;
    if (items >= 0 && view->len != item * items) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, not %zd", name, view->len,
                     item * items);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(scan_doc,
             "scan(data, offsets, kind, stops, spans)\n\n"
             "Read the lines data[offsets[i]:offsets[i + 1]] (int64 offsets, n + 1 of them):\n"
             "kind (int16, n): each one's message index, -1 (certain header, unknown\n"
             "message), -2 (for the Python reader) or -3 (binary); stops (int64, n): where the\n"
             "line ends, cut at max_chars characters and without trailing CR and LF; spans\n"
             "(int64, 2 x fields x n): each field's starts, then its ends, in data, -1 where\n"
             "unset.");

static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    PyObject *objects[5];
    Py_buffer data, offsets, kind, stops, spans;
    if (!PyArg_ParseTuple(args, "OOOOO", &objects[0], &objects[1], &objects[2], &objects[3],
                          &objects[4]))
        return NULL;
    if (buffer(objects[0], &data, 0, 1, -1, "data") < 0)
        return NULL;
    if (buffer(objects[1], &offsets, 0, 1, -1, "offsets") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t n = offsets.len / (Py_ssize_t)sizeof(int64_t) - 1;
    int ok = n >= 0 && offsets.len % (Py_ssize_t)sizeof(int64_t) == 0;
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "offsets must be n + 1 int64 values");
    int got = 0;
    if (ok && buffer(objects[2], &kind, 1, sizeof(int16_t), n, "kind") == 0) {
        got = 1;
        if (buffer(objects[3], &stops, 1, sizeof(int64_t), n, "stops") == 0) {
            got = 2;
            if (buffer(objects[4], &spans, 1, sizeof(int64_t), n * 2 * self->fields, "spans") == 0)
                got = 3;
        }
    }
    const int64_t *at = offsets.buf;
    for (Py_ssize_t i = 0; got == 3 && i < n; i++) {
        if (at[i] < 0 || at[i] > at[i + 1] || at[i + 1] > data.len) {
            PyErr_SetString(PyExc_ValueError, "offsets must rise within data");
            got = 4;
        }
    }
    if (got == 3) {
        Matcher m = {pcre2_match_data_create(self->max_groups + 1, NULL),
                     pcre2_match_context_create(NULL),
                     pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, NULL), self->jit};
        if (m.data == NULL || m.context == NULL || m.stack == NULL) {
            PyErr_NoMemory();
        } else {
            pcre2_jit_stack_assign(m.context, NULL, m.stack);
            const char *bytes = data.buf;
            int16_t *kinds = kind.buf;
            int64_t *stop = stops.buf, *span = spans.buf;
            Py_BEGIN_ALLOW_THREADS
            memset(span, 0xFF, (size_t)spans.len); /* -1 */
            for (Py_ssize_t i = 0; i < n; i++) {
                Py_ssize_t start = (Py_ssize_t)at[i], end = (Py_ssize_t)at[i + 1];
                if (memchr(bytes + start, 0, (size_t)(end - start)) != NULL) {
                    kinds[i] = BINARY;
                    stop[i] = end;
                    continue;
                }
                if (end - start > self->max_chars) { /* at most max_chars characters */
                    Py_ssize_t chars = 0, p = start;
                    while (p < end && chars < self->max_chars) {
                        p++;
                        while (p < end && ((unsigned char)bytes[p] & 0xC0) == 0x80)
                            p++;
                        chars++;
                    }
                    end = p;
                }
                while (end > start && (bytes[end - 1] == '\n' || bytes[end - 1] == '\r'))
                    end--;
                stop[i] = end;
                kinds[i] = (int16_t)line(self, &m, bytes, start, end, span + i, n);
            }
            Py_END_ALLOW_THREADS
        }
        if (m.stack)
            pcre2_jit_stack_free(m.stack);
        if (m.context)
            pcre2_match_context_free(m.context);
        if (m.data)
            pcre2_match_data_free(m.data);
    }
    if (got >= 3)
        PyBuffer_Release(&spans);
    if (got >= 2)
        PyBuffer_Release(&stops);
    if (got >= 1)
        PyBuffer_Release(&kind);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Scanner_doc,
             "Scanner(headers, messages, words, needle, needles, fields, max_chars)\n\n"
             "headers: (pattern, slots, head) in order, head the group that ends where the\n"
             "message begins; messages: (pattern, slots) as MESSAGES; slots[g - 1] the field\n"
             "that group g fills (-1: none); words, needles: (text, [message indices]) to try;\n"
             "needle: the pattern that finds the needles.");

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "runbook._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = Scanner_doc,
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

PyDoc_STRVAR(views_doc,
             "views(data, begins, ends, rows) -> (views, validity, nulls)\n\n"
             "The strings data[begins[r]:ends[r]] for each r of rows (int64 arrays; a begin\n"
             "below 0 is a null) as the views and validity buffers of an Arrow string_view\n"
             "array whose one data buffer is data itself (below 2 GiB): nothing is copied\n"
             "but the short strings, which a view holds.");

static PyObject *views(PyObject *module, PyObject *args) {
    PyObject *objects[4], *result = NULL, *out = NULL, *validity = NULL;
    Py_buffer data, begins, ends, rows;
    if (!PyArg_ParseTuple(args, "OOOO", &objects[0], &objects[1], &objects[2], &objects[3]))
        return NULL;
    if (buffer(objects[0], &data, 0, 1, -1, "data") < 0)
        return NULL;
    if (buffer(objects[1], &begins, 0, 1, -1, "begins") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t size = begins.len / (Py_ssize_t)sizeof(int64_t);
    if (buffer(objects[2], &ends, 0, sizeof(int64_t), size, "ends") < 0) {
        PyBuffer_Release(&begins);
        PyBuffer_Release(&data);
        return NULL;
    }
    if (buffer(objects[3], &rows, 0, 1, -1, "rows") < 0) {
        PyBuffer_Release(&ends);
        PyBuffer_Release(&begins);
        PyBuffer_Release(&data);
        return NULL;
    }
    const int64_t *b = begins.buf, *e = ends.buf, *r = rows.buf;
    Py_ssize_t n = rows.len / (Py_ssize_t)sizeof(int64_t), nulls = 0;
    if (data.len > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "views need data below 2 GiB");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (r[i] < 0 || r[i] >= size) {
            PyErr_SetString(PyExc_ValueError, "a row beyond the spans");
            goto done;
        }
        int64_t at = b[r[i]], to = e[r[i]];
        if (at < 0)
            nulls++;
        else if (at > to || to > data.len) {
            PyErr_SetString(PyExc_ValueError, "a span outside data");
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, n * 16);
    validity = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (out && validity) {
        unsigned char *view = (unsigned char *)PyBytes_AS_STRING(out);
        unsigned char *valid = (unsigned char *)PyBytes_AS_STRING(validity);
        const char *in = data.buf;
        Py_BEGIN_ALLOW_THREADS
        memset(view, 0, (size_t)(n * 16));
        memset(valid, 0, (size_t)((n + 7) / 8));
        for (Py_ssize_t i = 0; i < n; i++, view += 16) {
            int64_t at = b[r[i]];
            if (at < 0)
                continue;
            int32_t length = (int32_t)(e[r[i]] - at), offset = (int32_t)at, index = 0;
            valid[i / 8] |= (unsigned char)(1u << (i % 8));
            memcpy(view, &length, 4);
            if (length <= 12) {
                memcpy(view + 4, in + at, (size_t)length);
            } else {
                memcpy(view + 4, in + at, 4);
                memcpy(view + 8, &index, 4);
                memcpy(view + 12, &offset, 4);
            }
        }
        Py_END_ALLOW_THREADS
        result = Py_BuildValue("OOn", out, validity, nulls);
    }
done:
    Py_XDECREF(out);
    Py_XDECREF(validity);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&begins);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef module_methods[] = {
    {"views", views, METH_VARARGS, views_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "runbook._scan",
    "sshd lines matched by PCRE2's JIT, a batch at a time, without the GIL.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
