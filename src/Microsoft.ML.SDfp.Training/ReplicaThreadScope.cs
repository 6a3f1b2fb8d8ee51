using TorchSharp;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Gives each model copy of <see cref="TrainingOptions.Replicas"/> its share of libtorch's threads while the copies
/// train side by side, and the whole pool back afterwards (validation runs on one model).
/// </summary>
internal sealed class ReplicaThreadScope : IDisposable
{
    private readonly int _threads;

    private ReplicaThreadScope(int replicas)
    {
        _threads = torch.get_num_threads();
        torch.set_num_threads(Math.Max(1, _threads / replicas));
    }

    /// <summary>A scope for <paramref name="replicas"/> copies, or null for one (nothing to share).</summary>
    public static ReplicaThreadScope? Enter(int replicas) => replicas > 1 ? new ReplicaThreadScope(replicas) : null;

    public void Dispose() => torch.set_num_threads(_threads);
}
