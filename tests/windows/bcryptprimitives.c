/* Test-only stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 lacks.
 * Rust std >= 1.78 imports ProcessPrng from it; without it btsdr.exe does not start under
 * Wine. Built by tests/windows/run.sh next to the test executables; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
