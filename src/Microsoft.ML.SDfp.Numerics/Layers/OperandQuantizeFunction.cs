using Microsoft.ML.SDfp.Numerics.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Layers;

/// <summary>
/// Quantises a GEMM operand (W or A) in forward and passes its gradient straight through (STE), optionally quantising
/// it on the way (the WG role). The native conv/linear backward then sees the quantised operands it saved itself.
/// </summary>
internal sealed class OperandQuantizeFunction : autograd.SingleTensorFunction<OperandQuantizeFunction>
{
    private const string GradientKey = "gradient";

    public override string Name => "SDfpOperandQuantize";

    /// <summary>vars: the operand, its forward quantiser (or null), the quantiser of its gradient (or null).</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        ctx.save_data(GradientKey, new QuantizerBox((TensorQuantizer?)vars[2]));
        return vars[1] is TensorQuantizer forward ? forward.FakeQuantize(x) : x.alias();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var quantizer = ((QuantizerBox)ctx.get_data(GradientKey)).Quantizer;
        var grad = quantizer is null ? grad_output : BackwardErrors.Guard(() => quantizer.FakeQuantize(grad_output));
        return [grad, null!, null!];
    }
}
