using System.Runtime.ExceptionServices;
using Microsoft.ML.SDfp.Numerics.Quantization;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// Backpropagation through quantised layers with errors that say what happened. Use
/// <see cref="Backward(Tensor)"/> in place of <c>loss.backward()</c>.
/// </summary>
/// <remarks>
/// A managed exception cannot cross libtorch's native autograd engine (it would terminate the process), so when a
/// quantised layer meets a non-finite error tensor G during backward, it aborts the backward through libtorch, which
/// surfaces as a generic <see cref="System.Runtime.InteropServices.ExternalException"/> ("Function CSharpNode returned
/// an invalid gradient"). <see cref="Backward(Tensor)"/> replaces that with the original
/// <see cref="NonFiniteTensorException"/>, which names the layer and role. Callers that use <c>loss.backward()</c>
/// directly still get the clear exception from the next forward of any quantised layer on the same thread
/// (<see cref="ThrowIfFailed"/>).
/// </remarks>
public static class QuantizedBackward
{
    /// <summary>
    /// Runs <c>loss.backward()</c>; a failure inside a quantised layer's backward is rethrown as itself. The managed
    /// wrappers TorchSharp creates for gradients passing through custom autograd functions (and the quantised errors)
    /// are released as soon as the backward returns instead of at the end of the caller's dispose scope or at the next
    /// garbage collection; the parameters' accumulated gradients are unaffected.
    /// </summary>
    /// <param name="loss">The scalar loss.</param>
    /// <exception cref="NonFiniteTensorException">A quantised layer's error tensor held NaN/Inf (names layer and role).</exception>
    public static void Backward(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        BackwardErrors.Take(); // A stale failure from an earlier, unchecked backward must not be blamed on this one.
        try
        {
            using var scope = NewDisposeScope();
            loss.backward();
        }
        catch (Exception) when (BackwardErrors.HasPending)
        {
            ThrowIfFailed();
            throw;
        }
        ThrowIfFailed();
    }

    /// <summary>
    /// Call once at the end of every training step (after the optimizer step) of a model with quantised layers: runs a
    /// generation-0 garbage collection.
    /// </summary>
    /// <remarks>
    /// TorchSharp releases the native bookkeeping of custom autograd functions (each quantised layer adds three nodes
    /// per step) and of converted scalars only from finalizers. Left to the runtime, these small native blocks are
    /// freed in batches many steps later, interleaved with the large tensor buffers, and fragment the C heap so that
    /// every step writes to fresh pages that the kernel must fault in. Collecting the youngest generation each step
    /// frees them while the step's tensors are still recent, and is cheap because generation 0 holds little more than
    /// the step's own short-lived wrappers. The library's trainer calls it; measurements are in the Numerics README.
    /// </remarks>
    public static void EndStep() => GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: false);

    /// <summary>
    /// Throws the exception a quantised layer's backward parked on this thread, if any, and clears it.
    /// </summary>
    /// <exception cref="NonFiniteTensorException">A quantised layer's error tensor held NaN/Inf.</exception>
    public static void ThrowIfFailed()
    {
        if (BackwardErrors.Take() is { } e)
            ExceptionDispatchInfo.Capture(e).Throw();
    }
}
