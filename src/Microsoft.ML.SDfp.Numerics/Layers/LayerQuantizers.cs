using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// The four role quantisers of one layer and the autograd plumbing around its GEMM: quantise W and A in forward,
/// G once in backward, WG optionally.
/// </summary>
internal sealed class LayerQuantizers : IDisposable
{
    private readonly string _layer;
    private QuantizationConfig _config;
    private QuantizationTelemetry? _telemetry;
    private TensorQuantizer? _weight, _activation, _error, _weightGradient;

    public LayerQuantizers(string layer, QuantizationConfig config, QuantizationTelemetry? telemetry)
    {
        _layer = layer;
        _telemetry = telemetry;
        _config = config;
        Rebuild();
    }

    public QuantizationConfig Config
    {
        get => _config;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(Config));
            if (ReferenceEquals(value, _config) || value == _config)
                return;
            value.Validate();
            _config = value;
            Rebuild();
        }
    }

    public QuantizationTelemetry? Telemetry
    {
        get => _telemetry;
        set
        {
            _telemetry = value;
            foreach (var q in All())
                q.Telemetry = value;
        }
    }

    public TensorQuantizer? For(TensorRole role) => role switch
    {
        TensorRole.Weight => _weight,
        TensorRole.Activation => _activation,
        TensorRole.Error => _error,
        _ => _weightGradient,
    };

    /// <summary>Quantised input, ready for the GEMM; A's gradient passes straight through.</summary>
    public Tensor Activation(Tensor input)
    {
        // A failure parked by an unchecked backward must not be silently trained over.
        QuantizedBackward.ThrowIfFailed();
        return Operand(input, _activation, null);
    }

    /// <summary>Quantised weights, ready for the GEMM; their gradient is quantised when WG is on.</summary>
    public Tensor Weight(Tensor weight) => Operand(weight, _weight, _weightGradient);

    /// <summary>The GEMM output, wired so that its incoming gradient is quantised once.</summary>
    public Tensor Output(Tensor output) =>
        _error is not null && output.requires_grad && is_grad_enabled()
            ? ErrorQuantizeFunction.apply(output, _error)
            : output;

    private static Tensor Operand(Tensor x, TensorQuantizer? forward, TensorQuantizer? gradient)
    {
        if (x.requires_grad && is_grad_enabled())
            return forward is null && gradient is null ? x : OperandQuantizeFunction.apply(x, forward!, gradient!);
        // No graph to build (inference, frozen operand): skip the autograd node entirely.
        return forward is null ? x : forward.FakeQuantize(x);
    }

    private void Rebuild()
    {
        Dispose();
        _config.Validate();
        _weight = Create(TensorRole.Weight);
        _activation = Create(TensorRole.Activation);
        _error = Create(TensorRole.Error);
        _weightGradient = Create(TensorRole.WeightGradient);
    }

    private TensorQuantizer? Create(TensorRole role) =>
        _config.For(role) is { } format
            ? new TensorQuantizer(_layer, role, format, _telemetry, TensorQuantizer.StreamSeed(_config.Seed, _layer, role))
            : null;

    private IEnumerable<TensorQuantizer> All() =>
        new[] { _weight, _activation, _error, _weightGradient }.OfType<TensorQuantizer>();

    public void Dispose()
    {
        foreach (var q in All())
            q.Dispose();
    }
}
