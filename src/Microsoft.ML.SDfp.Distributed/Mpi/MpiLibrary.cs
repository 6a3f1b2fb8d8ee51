using System.Runtime.InteropServices;

namespace Microsoft.ML.SDfp.Distributed.Mpi;

/// <summary>
/// Loads Open MPI's <c>libmpi.so.40</c> and resolves the few functions and predefined handles the binding uses.
/// </summary>
/// <remarks>
/// Open MPI's handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, ...) are the addresses of exported
/// globals such as <c>ompi_mpi_comm_world</c>, not the integers of Microsoft MPI, so they are resolved with
/// <see cref="NativeLibrary.GetExport"/>. The library is opened with <c>RTLD_GLOBAL</c> because Open MPI's own plugins
/// (<c>mca_*.so</c>) are linked against symbols they expect to find in the global scope; opened locally, as
/// <see cref="NativeLibrary.Load(string)"/> does, <c>MPI_Init</c> fails to load them.
/// </remarks>
internal static unsafe class MpiLibrary
{
    public const string FileName = "libmpi.so.40";
    public const int Success = 0;
    public const int ThreadSerialized = 2;
    private const int RtldNow = 2, RtldGlobal = 0x100;

    private static readonly Lazy<IntPtr> Handle = new(Open, LazyThreadSafetyMode.ExecutionAndPublication);

    public static IntPtr Library => Handle.Value;

    public static IntPtr Symbol(string name)
    {
        if (!NativeLibrary.TryGetExport(Library, name, out var address))
            throw new DllNotFoundException($"{FileName} has no export '{name}'; this binding expects Open MPI 4.x.");
        return address;
    }

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern IntPtr DlOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    private static extern IntPtr DlError();

    private static IntPtr Open()
    {
        var handle = DlOpen(FileName, RtldNow | RtldGlobal);
        if (handle == IntPtr.Zero)
        {
            var error = Marshal.PtrToStringUTF8(DlError()) ?? "unknown error";
            throw new DllNotFoundException($"Could not load Open MPI ({FileName}): {error}. Install the Debian packages openmpi-bin and libopenmpi-dev.");
        }
        return handle;
    }
}
