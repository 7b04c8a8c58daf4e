/* A stand-in for NVIDIA's libnvidia-ml.so.1, for tests on machines without a GPU.
 *
 * It exports the NVML functions snakepit_trio.hardware calls (through nvidia-ml-py's real
 * ctypes layer), and answers from the environment, read at each call:
 *   FAKE_NVML_COUNT      number of GPUs (default 2)
 *   FAKE_NVML_NAMES      comma-separated model names, one per GPU (default "NVIDIA Fake T4")
 *   FAKE_NVML_FAIL_INIT  set: nvmlInit fails with NVML_ERROR_DRIVER_NOT_LOADED
 *   FAKE_NVML_MIG        a GPU index in MIG mode, with two MIG instances
 * GPU i has uuid GPU-fa4e0000-0000-4000-8000-00000000000i, 16 GiB, (i+1) GiB used,
 * compute capability 8.i; MIG instance j of GPU i is MIG-fa4e0000-0000-4000-8000-0000000001ij.
 * Handles are small integers cast to pointers: 1 + i for GPUs, 0x100 + 16 i + j for MIGs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

enum { OK = 0, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, INSUFFICIENT_SIZE = 7,
       DRIVER_NOT_LOADED = 9, NOT_FOUND = 6 };

static int count(void) {
    const char *s = getenv("FAKE_NVML_COUNT");
    return s ? atoi(s) : 2;
}

static int mig_gpu(void) {
    const char *s = getenv("FAKE_NVML_MIG");
    return s && *s ? atoi(s) : -1;
}

static long gpu_of(nvmlDevice_t handle) {
    intptr_t h = (intptr_t)handle;
    return h >= 0x100 ? (h - 0x100) / 16 : h - 1;
}

static long mig_of(nvmlDevice_t handle) {
    intptr_t h = (intptr_t)handle;
    return h >= 0x100 ? (h - 0x100) % 16 : -1;
}

static nvmlReturn_t copy(char *out, unsigned int length, const char *text) {
    if (strlen(text) + 1 > length) return INSUFFICIENT_SIZE;
    strcpy(out, text);
    return OK;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return getenv("FAKE_NVML_FAIL_INIT") ? DRIVER_NOT_LOADED : OK;
}
nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlShutdown(void) { return OK; }

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NOT_SUPPORTED: return "Not Supported";
    case NOT_FOUND: return "Not Found";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    return copy(version, length, "550.54.15");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    *n = (unsigned int)count();
    return OK;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if ((int)index >= count()) return INVALID_ARGUMENT;
    *device = (nvmlDevice_t)(intptr_t)(index + 1);
    return OK;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    const char *names = getenv("FAKE_NVML_NAMES");
    char buffer[256], one[96];
    long gpu = gpu_of(device);
    snprintf(buffer, sizeof buffer, "%s", names && *names ? names : "NVIDIA Fake T4");
    char *item = strtok(buffer, ",");
    const char *last = item;
    for (long i = 0; item && i < gpu; i++) {
        item = strtok(NULL, ",");
        if (item) last = item;
    }
    if (mig_of(device) >= 0) {
        snprintf(one, sizeof one, "%s MIG 1g.5gb", last);
        return copy(name, length, one);
    }
    return copy(name, length, last);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    char text[96];
    long mig = mig_of(device);
    if (mig >= 0)
        snprintf(text, sizeof text, "MIG-fa4e0000-0000-4000-8000-0000000001%ld%ld",
                 gpu_of(device), mig);
    else
        snprintf(text, sizeof text, "GPU-fa4e0000-0000-4000-8000-00000000000%ld",
                 gpu_of(device));
    return copy(uuid, length, text);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    unsigned long long gib = 1ULL << 30;
    memory->total = (mig_of(device) >= 0 ? 5 : 16) * gib;
    memory->used = (unsigned long long)(gpu_of(device) + 1) * gib / (mig_of(device) >= 0 ? 4 : 1);
    memory->free = memory->total - memory->used;
    return OK;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    *major = 8;
    *minor = (int)gpu_of(device);
    return OK;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    if (mig_gpu() < 0) return NOT_SUPPORTED;
    *current = *pending = gpu_of(device) == mig_gpu() ? 1 : 0;
    return OK;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *n) {
    *n = gpu_of(device) == mig_gpu() ? 7 : 0;
    return OK;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *mig) {
    if (gpu_of(device) != mig_gpu() || index >= 2) return NOT_FOUND;
    *mig = (nvmlDevice_t)(intptr_t)(0x100 + 16 * gpu_of(device) + index);
    return OK;
}
