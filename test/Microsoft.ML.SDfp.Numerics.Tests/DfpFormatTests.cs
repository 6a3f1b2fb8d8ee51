using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class DfpFormatTests
{
    [Theory]
    [InlineData(2, 1, -2)]
    [InlineData(8, 127, -128)]
    [InlineData(16, 32767, -32768)]
    public void Integer_range_is_that_of_n_bit_twos_complement(int bits, long qmax, long qmin)
    {
        var format = DfpFormat.Dfp(bits);
        Assert.Equal(qmax, format.QMax);
        Assert.Equal(qmin, format.QMin);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(-3)]
    public void Bit_width_outside_2_to_16_is_rejected_naming_property_and_value(int bits)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DfpFormat.Dfp(bits));
        Assert.Equal("Bits", e.ParamName);
        Assert.Contains($"Bits = {bits}", e.Message);
    }

    [Fact]
    public void Invalid_properties_are_named_in_the_error()
    {
        var cases = new (DfpFormat Format, string Property, string Value)[]
        {
            (new DfpFormat { Shift = 40 }, "Shift", "40"),
            (new DfpFormat { HistoryLength = 0 }, "HistoryLength", "0"),
            (new DfpFormat { AutoShift = true, AutoShiftMin = 3, AutoShiftMax = 1 }, "AutoShiftMax", "1"),
            (new DfpFormat { MaxSaturatedFraction = 1.5 }, "MaxSaturatedFraction", "1.5"),
            (new DfpFormat { Rounding = (RoundingMode)7 }, "Rounding", "7"),
        };
        foreach (var (format, property, value) in cases)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(format.Validate);
            Assert.Equal(property, e.ParamName);
            Assert.Contains($"{property} = {value}", e.Message);
        }
    }

    [Fact]
    public void Quantization_config_validation_names_the_role_too()
    {
        var config = QuantizationConfig.Uniform(DfpFormat.SDfp(8, 2)) with { Error = new DfpFormat { Bits = 20 } };
        var e = Assert.Throws<ArgumentOutOfRangeException>(config.Validate);
        Assert.Equal("Error.Bits", e.ParamName);
        Assert.Contains("Bits = 20", e.Message);
    }

    [Fact]
    public void Short_names_follow_the_paper_notation()
    {
        Assert.Equal("DFP8", DfpFormat.Dfp(8).ToString());
        Assert.Equal("S-DFP8(s=2)", DfpFormat.SDfp(8, 2).ToString());
        Assert.Equal("Auto8", DfpFormat.Auto(8).ToString());
        Assert.Equal("S-DFP8(s=1,stochastic)", (DfpFormat.SDfp(8, 1) with { Rounding = RoundingMode.Stochastic }).ToString());
        Assert.Equal("DFP6(delayed,h=4)", (DfpFormat.Dfp(6) with { ExponentSource = ExponentSource.Delayed, HistoryLength = 4 }).ToString());
    }

    [Theory]
    [InlineData("DFP8")]
    [InlineData("S-DFP8(s=2)")]
    [InlineData("S-DFP6(s=-1)")]
    [InlineData("Auto8")]
    [InlineData("Auto4(s=0..6,sat<=0.01)")]
    [InlineData("S-DFP8(s=1,stochastic)")]
    [InlineData("DFP8(delayed,h=16)")]
    [InlineData("S-DFP16(s=3,stochastic,delayed,h=4)")]
    public void Short_names_parse_back_to_the_same_format(string name)
    {
        var format = DfpFormat.Parse(name);
        Assert.Equal(name, format.ToString());
        Assert.Equal(format, DfpFormat.Parse(format.ToString().ToLowerInvariant()));
    }

    [Theory]
    [InlineData("FP8")]
    [InlineData("S-DFP8")]
    [InlineData("DFP8(s=x)")]
    [InlineData("DFP8(fast)")]
    public void Unparseable_names_are_quoted_in_the_error(string name)
    {
        var e = Assert.Throws<FormatException>(() => DfpFormat.Parse(name));
        Assert.Contains($"'{name}'", e.Message);
    }

    [Fact]
    public void Parsed_names_are_validated()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DfpFormat.Parse("DFP24"));
        Assert.Equal("Bits", e.ParamName);
    }

    [Fact]
    public void Uniform_config_quantises_W_A_G_and_leaves_weight_gradients_FP32()
    {
        var format = DfpFormat.SDfp(8, 1);
        var config = QuantizationConfig.Uniform(format);
        Assert.Equal(format, config.For(TensorRole.Weight));
        Assert.Equal(format, config.For(TensorRole.Activation));
        Assert.Equal(format, config.For(TensorRole.Error));
        Assert.Null(config.For(TensorRole.WeightGradient));
        Assert.False(config.IsFp32);
        Assert.True(QuantizationConfig.Fp32.IsFp32);
    }
}
