using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// A drop-in fully connected layer with (shifted) dynamic fixed point GEMM operands, quantised like
/// <see cref="QuantizedConv2d"/>: W and A in forward, G once in backward for dgrad and wgrad, WG optionally.
/// Parameters are named "weight" [out, in] and "bias" [out] like torch's Linear.
/// </summary>
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>, IQuantizedLayer
{
    private readonly LayerQuantizers _quantizers;

    /// <summary>Creates the layer with torch's default Linear initialisation, uniform in ±1/sqrt(inFeatures) for weight and bias.</summary>
    /// <param name="name">Layer name for telemetry and errors, e.g. "fc".</param>
    /// <param name="inFeatures">Input features.</param>
    /// <param name="outFeatures">Output features.</param>
    /// <param name="bias">Whether to add a learnable bias. Default true.</param>
    /// <param name="config">Quantisation per role; null means <see cref="QuantizationConfig.Fp32"/>.</param>
    /// <param name="telemetry">Statistics sink, or null.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public QuantizedLinear(string name, long inFeatures, long outFeatures, bool bias = true,
        QuantizationConfig? config = null, QuantizationTelemetry? telemetry = null)
        : base(name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        QuantizedConv2d.Positive(inFeatures, nameof(inFeatures));
        QuantizedConv2d.Positive(outFeatures, nameof(outFeatures));
        LayerName = name;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var bound = 1.0 / Math.Sqrt(inFeatures);
        register_parameter("weight", new Parameter(empty(outFeatures, inFeatures).uniform_(-bound, bound)));
        if (bias)
            register_parameter("bias", new Parameter(empty(outFeatures).uniform_(-bound, bound)));
        _quantizers = new LayerQuantizers(name, config ?? QuantizationConfig.Fp32, telemetry);
    }

    /// <summary>FP32 master weights [out, in], registered as "weight".</summary>
    public Parameter weight => get_parameter("weight")!;

    /// <summary>Bias [out], registered as "bias", or null when the layer has none.</summary>
    public Parameter? bias => get_parameter("bias");

    /// <summary>Layer name used in telemetry and errors.</summary>
    public string LayerName { get; }

    /// <summary>Input features.</summary>
    public long InFeatures { get; }

    /// <summary>Output features.</summary>
    public long OutFeatures { get; }

    /// <summary>Quantisation per role. Setting a different config validates it and restarts the role streams.</summary>
    public QuantizationConfig Config
    {
        get => _quantizers.Config;
        set => _quantizers.Config = value;
    }

    /// <summary>Statistics sink, or null.</summary>
    public QuantizationTelemetry? Telemetry
    {
        get => _quantizers.Telemetry;
        set => _quantizers.Telemetry = value;
    }

    /// <summary>
    /// Whether the forward GEMM is exact under the current <see cref="Config"/>: K = in products of the quantised
    /// operands sum without rounding in FP32 (see <see cref="Dfp.IsExactFp32Accumulation"/>).
    /// </summary>
    public bool IsForwardExact => Dfp.IsExactFp32Accumulation(InFeatures, Config.Activation, Config.Weight);

    /// <summary>The quantiser of <paramref name="role"/>, or null when that role is FP32.</summary>
    /// <param name="role">The tensor role.</param>
    public TensorQuantizer? Quantizer(TensorRole role) => _quantizers.For(role);

    /// <summary>x·Wᵀ + b with quantised x and W.</summary>
    /// <param name="input">[..., in].</param>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() < 1 || input.size(-1) != InFeatures)
            throw new ArgumentException(
                $"Layer '{LayerName}' expects input [..., {InFeatures}], got [{string.Join(", ", input.shape)}].", nameof(input));
        // Nothing to quantise (FP32, or a frozen scoring network): skip the dispose scope.
        if (Config.IsFp32)
            return nn.functional.linear(input, weight, bias);
        using var scope = NewDisposeScope();
        var a = _quantizers.Activation(input);
        var w = _quantizers.Weight(weight);
        var y = nn.functional.linear(a, w, bias);
        return _quantizers.Output(y).MoveToOuterDisposeScope();
    }

    /// <summary>Releases the quantisers and the parameters.</summary>
    /// <param name="disposing">True when called from <see cref="IDisposable.Dispose"/>.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _quantizers.Dispose();
        base.Dispose(disposing);
    }
}
