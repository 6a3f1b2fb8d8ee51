using System.Runtime.InteropServices;
using System.Text;

namespace Microsoft.ML.SDfp.Distributed.Mpi;

/// <summary>
/// <c>MPI_COMM_WORLD</c> of Open MPI: the processes started together by <c>mpirun</c>, with the few collective
/// operations data-parallel training needs.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="World"/> initialises MPI on first use (<c>MPI_Init_thread</c> with <c>MPI_THREAD_SERIALIZED</c>: any
/// thread may call, one at a time) and finalises it when the process exits. Errors are returned, not fatal
/// (<c>MPI_ERRORS_RETURN</c>): a failed call throws <see cref="MpiException"/> naming the call and MPI's error string.
/// </para>
/// <para>
/// Every method here is collective: all ranks must make the same calls in the same order with matching sizes, or the
/// job hangs. A rank that cannot go on should call <see cref="Abort"/>, which ends every rank.
/// </para>
/// </remarks>
public sealed unsafe class MpiCommunicator
{
    private const int MaxErrorString = 256;
    private static readonly object Gate = new();
    private static MpiCommunicator? _world;

    private readonly IntPtr _comm;
    private readonly Dictionary<Type, IntPtr> _types;
    private readonly IntPtr _sum, _max, _min;
    private readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> _bcast;
    private readonly delegate* unmanaged<void*, void*, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    private readonly delegate* unmanaged<void*, int, IntPtr, void*, int, IntPtr, IntPtr, int> _allgather;
    private readonly delegate* unmanaged<IntPtr, int> _barrier;
    private readonly delegate* unmanaged<IntPtr, int, int> _abort;
    private readonly delegate* unmanaged<int, byte*, int*, int> _errorString;

    private MpiCommunicator()
    {
        var init = (delegate* unmanaged<int*, byte***, int, int*, int>)MpiLibrary.Symbol("MPI_Init_thread");
        var initialized = (delegate* unmanaged<int*, int>)MpiLibrary.Symbol("MPI_Initialized");
        var setErrorHandler = (delegate* unmanaged<IntPtr, IntPtr, int>)MpiLibrary.Symbol("MPI_Comm_set_errhandler");
        var rank = (delegate* unmanaged<IntPtr, int*, int>)MpiLibrary.Symbol("MPI_Comm_rank");
        var size = (delegate* unmanaged<IntPtr, int*, int>)MpiLibrary.Symbol("MPI_Comm_size");
        _bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)MpiLibrary.Symbol("MPI_Bcast");
        _allreduce = (delegate* unmanaged<void*, void*, int, IntPtr, IntPtr, IntPtr, int>)MpiLibrary.Symbol("MPI_Allreduce");
        _allgather = (delegate* unmanaged<void*, int, IntPtr, void*, int, IntPtr, IntPtr, int>)MpiLibrary.Symbol("MPI_Allgather");
        _barrier = (delegate* unmanaged<IntPtr, int>)MpiLibrary.Symbol("MPI_Barrier");
        _abort = (delegate* unmanaged<IntPtr, int, int>)MpiLibrary.Symbol("MPI_Abort");
        _errorString = (delegate* unmanaged<int, byte*, int*, int>)MpiLibrary.Symbol("MPI_Error_string");
        _comm = MpiLibrary.Symbol("ompi_mpi_comm_world");
        _sum = MpiLibrary.Symbol("ompi_mpi_op_sum");
        _max = MpiLibrary.Symbol("ompi_mpi_op_max");
        _min = MpiLibrary.Symbol("ompi_mpi_op_min");
        _types = new Dictionary<Type, IntPtr>
        {
            [typeof(float)] = MpiLibrary.Symbol("ompi_mpi_float"),
            [typeof(double)] = MpiLibrary.Symbol("ompi_mpi_double"),
            [typeof(byte)] = MpiLibrary.Symbol("ompi_mpi_byte"),
            [typeof(sbyte)] = MpiLibrary.Symbol("ompi_mpi_int8_t"),
            [typeof(short)] = MpiLibrary.Symbol("ompi_mpi_int16_t"),
            [typeof(int)] = MpiLibrary.Symbol("ompi_mpi_int32_t"),
            [typeof(long)] = MpiLibrary.Symbol("ompi_mpi_int64_t"),
        };

        int already;
        Check("MPI_Initialized", initialized(&already));
        if (already == 0)
        {
            int provided;
            Check("MPI_Init_thread", init(null, null, MpiLibrary.ThreadSerialized, &provided));
            if (provided < MpiLibrary.ThreadSerialized)
                throw new MpiException("MPI_Init_thread", -1, $"the library provides thread level {provided}; MPI_THREAD_SERIALIZED ({MpiLibrary.ThreadSerialized}) is needed");
            AppDomain.CurrentDomain.ProcessExit += (_, _) => FinalizeMpi();
        }
        Check("MPI_Comm_set_errhandler", setErrorHandler(_comm, MpiLibrary.Symbol("ompi_mpi_errors_return")));
        int r, s;
        Check("MPI_Comm_rank", rank(_comm, &r));
        Check("MPI_Comm_size", size(_comm, &s));
        Rank = r;
        Size = s;
    }

    /// <summary>
    /// <c>MPI_COMM_WORLD</c>, initialising MPI on first use. Outside <c>mpirun</c> this is a world of one process.
    /// </summary>
    /// <exception cref="DllNotFoundException">Open MPI is not installed.</exception>
    /// <exception cref="MpiException">Initialisation failed.</exception>
    public static MpiCommunicator World
    {
        get
        {
            lock (Gate)
                return _world ??= new MpiCommunicator();
        }
    }

    /// <summary>
    /// True when this process was started by Open MPI's <c>mpirun</c> (it sets <c>OMPI_COMM_WORLD_SIZE</c>). Does not
    /// load or initialise MPI.
    /// </summary>
    public static bool IsLaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>This process's rank, 0..<see cref="Size"/>-1.</summary>
    public int Rank { get; }

    /// <summary>The number of processes.</summary>
    public int Size { get; }

    /// <summary>Copies <paramref name="buffer"/> from rank <paramref name="root"/> into every other rank's buffer (<c>MPI_Bcast</c>).</summary>
    public void Broadcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        fixed (T* data = buffer)
            Check("MPI_Bcast", _bcast((IntPtr)data, buffer.Length, TypeOf<T>(), root, _comm));
    }

    /// <summary>Replaces <paramref name="buffer"/> on every rank by the element-wise reduction over all ranks (<c>MPI_Allreduce</c>, in place).</summary>
    public void AllReduce<T>(Span<T> buffer, MpiOperation operation) where T : unmanaged
    {
        if (typeof(T) == typeof(byte))
            throw new ArgumentException("MPI_BYTE cannot be reduced; use sbyte.", nameof(buffer));
        var op = operation switch
        {
            MpiOperation.Sum => _sum,
            MpiOperation.Max => _max,
            MpiOperation.Min => _min,
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, "Not an MpiOperation value."),
        };
        fixed (T* data = buffer)
            Check("MPI_Allreduce", _allreduce((void*)1 /* MPI_IN_PLACE */, data, buffer.Length, TypeOf<T>(), op, _comm));
    }

    /// <summary>The reduction of one value over all ranks.</summary>
    public T AllReduce<T>(T value, MpiOperation operation) where T : unmanaged
    {
        Span<T> one = [value];
        AllReduce(one, operation);
        return one[0];
    }

    /// <summary>Every rank's <paramref name="send"/>, in rank order (<c>MPI_Allgather</c>); each rank sends the same count.</summary>
    public T[] AllGather<T>(ReadOnlySpan<T> send) where T : unmanaged
    {
        var result = new T[checked(send.Length * Size)];
        fixed (T* source = send)
        fixed (T* target = result)
            Check("MPI_Allgather", _allgather(source, send.Length, TypeOf<T>(), target, send.Length, TypeOf<T>(), _comm));
        return result;
    }

    /// <summary>Waits until every rank has called it (<c>MPI_Barrier</c>).</summary>
    public void Barrier() => Check("MPI_Barrier", _barrier(_comm));

    /// <summary>
    /// Ends every process of the job with <paramref name="errorCode"/> (<c>MPI_Abort</c>); <c>mpirun</c> kills the
    /// other ranks. Use it when this rank cannot go on, so that the others do not wait for it forever.
    /// </summary>
    public void Abort(int errorCode)
    {
        _abort(_comm, errorCode);
        Environment.Exit(errorCode); // MPI_Abort does not return on Open MPI; this is only a fallback.
    }

    /// <summary>Describes <paramref name="errorCode"/> with <c>MPI_Error_string</c>.</summary>
    public string ErrorString(int errorCode) => Describe(errorCode);

    private void Check(string call, int errorCode)
    {
        if (errorCode != MpiLibrary.Success)
            throw new MpiException(call, errorCode, Describe(errorCode));
    }

    private string Describe(int errorCode)
    {
        var text = stackalloc byte[MaxErrorString + 1];
        int length;
        if (_errorString(errorCode, text, &length) != MpiLibrary.Success)
            return "(no description)";
        return Encoding.UTF8.GetString(text, Math.Clamp(length, 0, MaxErrorString));
    }

    private IntPtr TypeOf<T>() where T : unmanaged =>
        _types.TryGetValue(typeof(T), out var type) ? type : throw new NotSupportedException($"No MPI datatype for {typeof(T).Name}.");

    private static void FinalizeMpi()
    {
        var finalized = (delegate* unmanaged<int*, int>)MpiLibrary.Symbol("MPI_Finalized");
        int done;
        if (finalized(&done) == MpiLibrary.Success && done == 0)
            ((delegate* unmanaged<int>)MpiLibrary.Symbol("MPI_Finalize"))();
    }
}
