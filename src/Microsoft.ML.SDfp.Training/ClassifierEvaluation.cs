using Microsoft.ML.SDfp.Training.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Evaluation and prediction for any module mapping [N, C, H, W] images to logits: batched, in eval mode without
/// gradients, with the module's mode restored after.
/// </summary>
internal static class ClassifierEvaluation
{
    /// <summary>Softmax of the logits for every image, as a new tensor moved to the caller's dispose scope.</summary>
    public static Tensor PredictProbabilities(nn.Module<Tensor, Tensor> model, Tensor images, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (images.dim() != 4)
            throw new ArgumentException($"Expected images of shape [N, C, H, W]; got [{string.Join(", ", images.shape)}].", nameof(images));
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var n = images.shape[0];
            var parts = new List<Tensor>();
            for (long start = 0; start < n; start += batchSize)
            {
                var length = Math.Min(batchSize, n - start);
                parts.Add(nn.functional.softmax(model.call(images.narrow(0, start, length)), 1));
            }
            var result = parts.Count == 1 ? parts[0] : cat(parts, 0);
            return result.MoveToOuterDisposeScope();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>Mean cross-entropy and accuracy on <paramref name="data"/>; cancellation is checked before every batch.</summary>
    public static (double Loss, double Accuracy) Evaluate(nn.Module<Tensor, Tensor> model, ImageDataset data, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var n = data.Count;
        if (n == 0)
            throw new ArgumentException("Cannot evaluate on an empty data set.", nameof(data));
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double lossSum = 0;
            long correct = 0;
            for (long start = 0; start < n; start += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var length = Math.Min(batchSize, n - start);
                var labels = data.Labels.narrow(0, start, length);
                var logits = model.call(data.Images.narrow(0, start, length));
                lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
                correct += logits.argmax(1).eq(labels).sum().item<long>();
            }
            return (lossSum / n, (double)correct / n);
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
