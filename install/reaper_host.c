/* A REAPER-like Python host: loads a shared libpython the way REAPER does and runs scripts in it.
 *
 *   reaper_host LIBPYTHON [--setup FILE | --action FILE | --code TEXT]...
 *
 * REAPER dlopen()s the library named by pythonlibpath64/pythonlibdll64, calls Py_InitializeEx(0)
 * and runs each ReaScript's text with PyRun_SimpleString: as __main__, with no __file__, and with
 * REAPER's RPR_* functions in __main__. This host does the same. --setup FILE runs REAPER's own side
 * (in the tests, the stand-in that puts RPR_* into __main__); --action FILE runs a script's text, then
 * REAPER's main loop: while sys._reaper_pending (set by the setup side's tick) is above 0, it runs
 * the tick code (sys._reaper_tick, a string) every 2 ms, at most sys._reaper_max_ticks times.
 * --code TEXT runs TEXT. Used by tests/reaper/test_embedded.py and `reamaster reaper doctor`.
 * POSIX only (dlopen); Windows REAPER uses LoadLibrary the same way. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*init_fn)(int);
typedef int (*run_fn)(const char *);
typedef void *(*sysget_fn)(const char *);
typedef long (*aslong_fn)(void *);
typedef const char *(*asutf8_fn)(void *);
typedef void (*err_fn)(void);

static run_fn run;
static sysget_fn sysget;
static aslong_fn aslong;
static asutf8_fn asutf8;
static err_fn errclear;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(3); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(3); }
    buf[n] = 0;
    fclose(f);
    return buf;
}

static long sys_long(const char *name, long dflt) {
    void *o = sysget(name); /* borrowed */
    if (!o) return dflt;
    long v = aslong(o);
    if (v == -1) errclear();
    return v;
}

static void main_loop(void) {
    long max_ticks = sys_long("_reaper_max_ticks", 20000);
    struct timespec ts = {0, 2000000};
    for (long i = 0; i < max_ticks && sys_long("_reaper_pending", 0) > 0; i++) {
        void *code = sysget("_reaper_tick");
        if (!code) return;
        const char *text = asutf8(code);
        if (!text) { errclear(); return; }
        char *copy = strdup(text); /* the tick may replace sys._reaper_tick */
        run(copy);
        free(copy);
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBPYTHON [--setup FILE | --action FILE | --code TEXT]...\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) { fprintf(stderr, "reaper_host: cannot load %s: %s\n", argv[1], dlerror()); return 4; }
    init_fn init = (init_fn)dlsym(lib, "Py_InitializeEx");
    run = (run_fn)dlsym(lib, "PyRun_SimpleString");
    sysget = (sysget_fn)dlsym(lib, "PySys_GetObject");
    aslong = (aslong_fn)dlsym(lib, "PyLong_AsLong");
    asutf8 = (asutf8_fn)dlsym(lib, "PyUnicode_AsUTF8");
    errclear = (err_fn)dlsym(lib, "PyErr_Clear");
    if (!init || !run || !sysget || !aslong || !asutf8 || !errclear) {
        fprintf(stderr, "reaper_host: %s is not a Python library\n", argv[1]);
        return 4;
    }
    init(0);
    int failures = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--code")) {
            failures += run(argv[i + 1]) != 0;
            continue;
        }
        char *text = slurp(argv[i + 1]);
        if (!strcmp(argv[i], "--setup")) {
            failures += run(text) != 0;
        } else if (!strcmp(argv[i], "--action")) {
            failures += run(text) != 0; /* REAPER prints the traceback to its console and goes on */
            main_loop();
        } else {
            fprintf(stderr, "reaper_host: unknown option %s\n", argv[i]);
            return 2;
        }
        free(text);
    }
    run("import sys; sys.stdout.flush(); sys.stderr.flush()");
    fflush(stdout);
    fflush(stderr);
    _Exit(failures ? 1 : 0); /* REAPER never finalizes Python either */
}
