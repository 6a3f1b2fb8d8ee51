using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>Where a training step met NaN or infinity, as data: what was non-finite, and the layer and role when known.</summary>
internal sealed record StepFailure(string Source, string? Layer, TensorRole? Role, Exception? Inner)
{
    /// <summary>A non-finite loss.</summary>
    public static StepFailure Loss { get; } = new("loss", null, null, null);

    /// <summary>The step's failure as the exception <see cref="NonFiniteLossPolicy.Throw"/> raises (1-based epoch and step).</summary>
    public TrainingDivergedException ToException(int epoch, int step) => new(epoch, step, Source, Layer, Role, Inner);

    /// <summary>The quantised layer's failure that <paramref name="e"/> carries, or null when it is some other error.</summary>
    public static StepFailure? From(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            if (current is NonFiniteTensorException nonFinite)
                return new StepFailure("quantised tensor", nonFinite.Layer, nonFinite.Role, nonFinite);
        }
        return null;
    }

    /// <summary>
    /// One reduction per gradient, stacked, and a single finiteness test: cheap next to the convolutions,
    /// and exact about which parameter went bad. (A sum of finite gradients overflowing to infinity needs
    /// gradients near 1e38, which is divergence too.)
    /// </summary>
    public static StepFailure? FromGradients(IReadOnlyList<(string name, Parameter parameter)> parameters)
    {
        var names = new List<string>(parameters.Count);
        var sums = new List<Tensor>(parameters.Count);
        foreach (var (name, parameter) in parameters)
        {
            var grad = parameter.grad;
            if (grad is null)
                continue;
            names.Add(name);
            sums.Add(grad.sum());
        }
        if (sums.Count == 0)
            return null;
        var finite = stack(sums).isfinite();
        if (finite.all().item<bool>())
            return null;
        var firstBad = (int)finite.logical_not().nonzero()[0, 0].item<long>();
        var parameterName = names[firstBad];
        var dot = parameterName.LastIndexOf('.');
        var layer = dot > 0 ? parameterName[..dot] : parameterName;
        return new StepFailure($"gradient of '{parameterName}'", layer, null, null);
    }
}
