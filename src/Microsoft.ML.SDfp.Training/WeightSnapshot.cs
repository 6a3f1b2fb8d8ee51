using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// A private copy of a module's parameters and buffers (or its buffers alone) that can be refreshed and put back
/// without allocating: used to keep the best epoch's weights, and to undo batch-norm statistics of a skipped step.
/// </summary>
internal sealed class WeightSnapshot : IDisposable
{
    private readonly List<(Tensor Live, Tensor Copy)> _pairs = new();

    public WeightSnapshot(nn.Module module, bool buffersOnly)
    {
        using var noGrad = no_grad();
        var tensors = module.named_buffers().Select(b => b.buffer);
        if (!buffersOnly)
            tensors = module.named_parameters().Select(p => (Tensor)p.parameter).Concat(tensors);
        foreach (var live in tensors)
        {
            // Detached from any dispose scope: the snapshot lives as long as training does, and frees itself.
            var copy = live.detach().clone().DetachFromDisposeScope();
            _pairs.Add((live, copy));
        }
    }

    /// <summary>True once <see cref="Capture"/> has run.</summary>
    public bool Captured { get; private set; }

    /// <summary>Copies the module's current values into the snapshot.</summary>
    public void Capture()
    {
        using var noGrad = no_grad();
        foreach (var (live, copy) in _pairs)
            copy.copy_(live);
        Captured = true;
    }

    /// <summary>Copies the snapshot back into the module, in place (the optimizer keeps pointing at the same tensors).</summary>
    public void Restore()
    {
        using var noGrad = no_grad();
        foreach (var (live, copy) in _pairs)
            live.copy_(copy);
    }

    /// <summary>Writes the captured values, for a checkpoint.</summary>
    public void Write(BinaryWriter writer)
    {
        foreach (var (_, copy) in _pairs)
            TrainingCheckpoint.WriteTensor(writer, copy);
    }

    /// <summary>Reads what <see cref="Write"/> wrote; the snapshot then counts as captured.</summary>
    public void Read(BinaryReader reader)
    {
        foreach (var (_, copy) in _pairs)
            TrainingCheckpoint.ReadInto(reader, copy, "best weights");
        Captured = true;
    }

    public void Dispose()
    {
        foreach (var (_, copy) in _pairs)
            copy.Dispose();
        _pairs.Clear();
    }
}
