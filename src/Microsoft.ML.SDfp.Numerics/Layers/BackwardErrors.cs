using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// Runs quantisation inside an autograd backward without letting a managed exception unwind through libtorch's
/// native engine, which would kill the process: the exception is parked for <see cref="QuantizedBackward"/> and the
/// backward is aborted with a deliberately malformed gradient, which libtorch reports as an ordinary error.
/// </summary>
/// <remarks>
/// libtorch runs the backward of CPU graphs on the thread that called <c>backward()</c>, so the parked exception is
/// kept per thread: parallel trainings (or parallel tests) cannot see each other's failures.
/// </remarks>
internal static class BackwardErrors
{
    [ThreadStatic]
    private static Exception? _pending;

    public static Tensor Guard(Func<Tensor> quantize)
    {
        try
        {
            return quantize();
        }
        catch (Exception e)
        {
            _pending ??= e;
            // A gradient of the wrong shape makes libtorch's engine stop the whole backward and raise on the caller's thread.
            return empty(0);
        }
    }

    public static Exception? Take()
    {
        var e = _pending;
        _pending = null;
        return e;
    }

    public static bool HasPending => _pending is not null;
}
