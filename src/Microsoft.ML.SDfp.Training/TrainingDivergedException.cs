using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Training;

/// <summary>Training produced NaN or infinity, in the loss, a gradient, or a quantised tensor.</summary>
/// <remarks>
/// Thrown under <see cref="NonFiniteLossPolicy.Throw"/>. The model's weights are those before the failing step:
/// no optimizer update ran with the non-finite values.
/// </remarks>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception; the message is built from the location.</summary>
    /// <param name="epoch">1-based epoch of the failing step.</param>
    /// <param name="step">1-based step within the epoch.</param>
    /// <param name="source">What was non-finite, e.g. "loss", "gradient of layer1.0.conv1.weight", "quantised tensor".</param>
    /// <param name="layer">Layer name when known.</param>
    /// <param name="role">Tensor role when the failure came from a quantised layer.</param>
    /// <param name="innerException">The numerics exception, if one was caught.</param>
    public TrainingDivergedException(int epoch, int step, string source, string? layer = null, TensorRole? role = null, Exception? innerException = null)
        : base(BuildMessage(epoch, step, source, layer, role, innerException), innerException)
    {
        Epoch = epoch;
        Step = step;
        Source = source;
        Layer = layer;
        Role = role;
    }

    /// <summary>1-based epoch of the failing step.</summary>
    public int Epoch { get; }

    /// <summary>1-based step within <see cref="Epoch"/>.</summary>
    public int Step { get; }

    /// <summary>What was non-finite: "loss", "gradient", or "quantised tensor".</summary>
    public new string Source { get; }

    /// <summary>The layer (torchvision-style module name) when known, else null.</summary>
    public string? Layer { get; }

    /// <summary>The quantised tensor role when the failure came from a quantised layer, else null.</summary>
    public TensorRole? Role { get; }

    private static string BuildMessage(int epoch, int step, string source, string? layer, TensorRole? role, Exception? inner)
    {
        var where = layer is null ? "" : role is null ? $" in layer '{layer}'" : $" in layer '{layer}' role {role}";
        var detail = inner is null ? "" : $" ({inner.Message})";
        return $"Training diverged at epoch {epoch}, step {step}: non-finite {source}{where}{detail}. " +
               "Lower the learning rate, add warm-up, check the input data for NaN/Inf, " +
               "or set TrainingOptions.NonFinitePolicy = SkipStep to drop such steps.";
    }
}
