using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// "Precise BN": replaces every batch norm's running mean and variance with their plain average over a number of
/// training batches seen by the current weights, instead of the exponential average collected while the weights moved.
/// </summary>
/// <remarks>
/// Only the running statistics change. The batches come from a generator of their own, and the quantisers' state is
/// put back afterwards with telemetry paused, so that training goes on exactly as it would have.
/// </remarks>
internal static class BatchNormRecalibration
{
    public static void Run(nn.Module<Tensor, Tensor> model, ImageDataset train, int batches, int batchSize, long seed, int epoch)
    {
        var norms = model.modules().OfType<BatchNorm>().ToList();
        if (norms.Count == 0 || batches == 0)
            return;
        using var quantizers = new QuantizerStateScope(model.modules().OfType<IQuantizedLayer>());
        var momenta = norms.Select(n => n.momentum).ToList();
        var wasTraining = model.training;
        try
        {
            model.train();
            foreach (var norm in norms)
                norm.reset_running_stats();
            using var noGrad = no_grad();
            using var generator = new Generator(unchecked((ulong)seed + 15_485_863UL * (ulong)epoch));
            using var order = randperm(train.Count, generator: generator);
            var size = (int)Math.Min(batchSize, train.Count);
            var count = (int)Math.Min(batches, train.Count / size);
            for (var b = 0; b < count; b++)
            {
                using var scope = NewDisposeScope();
                // Momentum 1/(b+1) makes the running value the plain mean over the batches so far.
                foreach (var norm in norms)
                    norm.momentum = 1.0 / (b + 1);
                model.call(train.Images.index_select(0, order.narrow(0, (long)b * size, size)));
            }
        }
        finally
        {
            for (var i = 0; i < norms.Count; i++)
                norms[i].momentum = momenta[i];
            model.train(wasTraining);
        }
    }
}
