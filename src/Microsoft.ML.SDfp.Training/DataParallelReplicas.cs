using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Extra copies of a model that run forward and backward on slices of the same batch at the same time as the model
/// itself, each on its own thread with its own share of torch's threads (see <see cref="TrainingOptions.Replicas"/>).
/// </summary>
/// <remarks>
/// Only the main model is ever updated: after a step its gradients receive the replicas' gradients, the optimizer
/// steps, and the replicas are overwritten with the new weights. Batch-norm running statistics are averaged over all
/// copies first, so they follow the whole batch as closely as per-slice statistics allow.
/// </remarks>
internal sealed class DataParallelReplicas : IDisposable
{
    private readonly List<ResNetModel> _replicas = new();
    private readonly Parameter[] _mainParameters;
    private readonly Tensor[] _mainBuffers;
    private readonly List<(Parameter[] Parameters, Tensor[] Buffers)> _copies = new();

    public DataParallelReplicas(ResNetModel main, int extraCopies)
    {
        _mainParameters = main.parameters().ToArray();
        _mainBuffers = main.buffers().ToArray();
        for (var i = 0; i < extraCopies; i++)
        {
            var replica = ResNetFactory.Create(main.Options);
            replica.train(main.training);
            _replicas.Add(replica);
            _copies.Add((replica.parameters().ToArray(), replica.buffers().ToArray()));
        }
        Synchronize();
    }

    /// <summary>The replicas (not the main model).</summary>
    public IReadOnlyList<ResNetModel> Replicas => _replicas;

    /// <summary>Copies the main model's weights and buffers into every replica.</summary>
    public void Synchronize()
    {
        using var noGrad = no_grad();
        foreach (var (parameters, buffers) in _copies)
        {
            for (var i = 0; i < parameters.Length; i++)
                parameters[i].copy_(_mainParameters[i]);
            for (var i = 0; i < buffers.Length; i++)
                buffers[i].copy_(_mainBuffers[i]);
        }
    }

    /// <summary>Adds every replica's gradients into the main model's and clears theirs.</summary>
    public void ReduceGradients()
    {
        using var noGrad = no_grad();
        foreach (var (parameters, _) in _copies)
        {
            for (var i = 0; i < parameters.Length; i++)
            {
                var grad = parameters[i].grad;
                if (grad is null)
                    continue;
                var target = _mainParameters[i].grad;
                if (target is null)
                    _mainParameters[i].grad = grad.clone();
                else
                    target.add_(grad);
                grad.zero_();
            }
        }
    }

    /// <summary>
    /// Averages floating-point buffers (batch-norm running mean and variance) over the main model and the first
    /// <paramref name="activeReplicas"/> replicas (those that ran this step), into the main model.
    /// </summary>
    public void AverageBuffers(int activeReplicas)
    {
        if (activeReplicas <= 0)
            return;
        using var noGrad = no_grad();
        for (var i = 0; i < _mainBuffers.Length; i++)
        {
            var buffer = _mainBuffers[i];
            if (!buffer.is_floating_point())
                continue;
            for (var r = 0; r < activeReplicas; r++)
                buffer.add_(_copies[r].Buffers[i]);
            buffer.div_(activeReplicas + 1);
        }
    }

    /// <summary>Clears the replicas' gradients (after a skipped step).</summary>
    public void ZeroGradients()
    {
        foreach (var replica in _replicas)
            replica.zero_grad();
    }

    /// <summary>Sets train or eval mode on every replica.</summary>
    public void Train(bool on)
    {
        foreach (var replica in _replicas)
            replica.train(on);
    }

    public void Dispose()
    {
        foreach (var replica in _replicas)
            replica.Dispose();
        _replicas.Clear();
        _copies.Clear();
    }

    /// <summary>
    /// Runs <paramref name="work"/> for slice 0 on the calling thread and for slices 1.. on fresh threads, all at once,
    /// and waits for all. Fresh threads pick up torch's current (per-replica) thread count when they first run a
    /// parallel op, which pooled threads that ran torch before would not.
    /// </summary>
    public static void RunConcurrently(int slices, Action<int> work)
    {
        var errors = new Exception?[slices];
        var threads = new List<Thread>(slices - 1);
        for (var i = 1; i < slices; i++)
        {
            var slice = i;
            var thread = new Thread(() =>
            {
                try
                {
                    work(slice);
                }
                catch (Exception e)
                {
                    errors[slice] = e;
                }
            }, maxStackSize: 16 * 1024 * 1024) { IsBackground = true, Name = $"sdfp-replica-{slice}" };
            threads.Add(thread);
            thread.Start();
        }
        try
        {
            work(0);
        }
        catch (Exception e)
        {
            errors[0] = e;
        }
        foreach (var thread in threads)
            thread.Join();
        var thrown = errors.Where(e => e is not null).Cast<Exception>().ToList();
        if (thrown.Count == 1)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(thrown[0]).Throw();
        if (thrown.Count > 1)
            throw new AggregateException(thrown);
    }
}
