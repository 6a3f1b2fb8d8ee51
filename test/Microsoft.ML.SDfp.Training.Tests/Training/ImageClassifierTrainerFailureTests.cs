using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class ImageClassifierTrainerFailureTests
{
    public ImageClassifierTrainerFailureTests() => Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();

    private const int Count = 96;
    private const int BatchSize = 32;
    private const long Seed = 9;
    private const int PoisonedImage = 40;

    /// <summary>Random data with NaN in every pixel of one image.</summary>
    private static ImageDataset PoisonedData()
    {
        var data = TrainingFixtures.RandomData(Count, seed: 3);
        data.Images[PoisonedImage].fill_(float.NaN);
        return data;
    }

    /// <summary>The 1-based step of epoch 1 that sees the poisoned image: the trainer's first draw is the epoch's shuffle.</summary>
    private static int PoisonedStep()
    {
        using var generator = new Generator(Seed);
        using var order = randperm(Count, generator: generator);
        var position = order.data<long>().ToArray().ToList().IndexOf(PoisonedImage);
        return position / BatchSize + 1;
    }

    private static TrainingOptions Options => new() { Epochs = 2, BatchSize = BatchSize, LearningRate = 0.05, Seed = Seed };

    [Fact]
    public void NaN_in_the_data_of_an_fp32_model_stops_with_the_epoch_and_step_of_the_bad_loss()
    {
        using var data = PoisonedData();
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);

        var error = Assert.Throws<TrainingDivergedException>(() => new ImageClassifierTrainer(model, Options).Fit(data));

        Assert.Equal(1, error.Epoch);
        Assert.Equal(PoisonedStep(), error.Step);
        Assert.Equal("loss", error.Source);
        Assert.Null(error.Layer);
        Assert.Contains($"epoch 1, step {PoisonedStep()}", error.Message);
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>(), "no update may run with non-finite values"));
    }

    [Fact]
    public void NaN_reaching_a_quantised_layer_names_the_layer_and_role()
    {
        using var data = PoisonedData();
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());

        var error = Assert.Throws<TrainingDivergedException>(() => new ImageClassifierTrainer(model, Options).Fit(data));

        Assert.Equal(1, error.Epoch);
        Assert.Equal(PoisonedStep(), error.Step);
        // The stem conv is FP32; the first quantised operand on the way is the activation of layer1.0.conv1.
        Assert.Equal("layer1.0.conv1", error.Layer);
        Assert.Equal(TensorRole.Activation, error.Role);
        Assert.IsType<NonFiniteTensorException>(error.InnerException);
        Assert.Contains("layer1.0.conv1", error.Message);
        Assert.Contains("Activation", error.Message);
    }

    [Fact]
    public void SkipStep_drops_the_bad_step_and_keeps_training()
    {
        using var data = PoisonedData();
        using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body());
        var trainer = new ImageClassifierTrainer(model, Options with { NonFinitePolicy = NonFiniteLossPolicy.SkipStep });
        var steps = new List<StepProgress>();
        trainer.StepCompleted += steps.Add;

        var result = trainer.Fit(data);

        Assert.Equal(2, result.Epochs.Count);
        Assert.All(result.Epochs, e => Assert.Equal(1, e.SkippedSteps));   // the poisoned image is in one batch per epoch
        Assert.Equal(2, steps.Count(s => s.Skipped));
        Assert.True(steps.Single(s => s.Skipped && s.Epoch == 1).Step == PoisonedStep());
        Assert.All(result.Epochs, e => Assert.True(double.IsFinite(e.TrainLoss)));
        // Weights and batch-norm statistics stay finite: the bad batch left no trace.
        Assert.All(model.state_dict().Values, t => Assert.True(t.isfinite().all().item<bool>()));
    }

    [Fact]
    public void Non_finite_gradient_with_a_finite_loss_names_the_parameter()
    {
        using var data = TrainingFixtures.RandomData(64, seed: 2);
        using var model = new SqrtAtZero();

        var error = Assert.Throws<TrainingDivergedException>(() => new ImageClassifierTrainer(model, Options).Fit(data));

        Assert.Equal((1, 1), (error.Epoch, error.Step));
        Assert.Contains("gradient of 'offset'", error.Source);
        Assert.Contains("offset", error.Message);
    }

    [Fact]
    public void Non_finite_error_reaching_a_quantised_layer_in_backward_names_the_layer_and_role()
    {
        using var data = TrainingFixtures.RandomData(64, seed: 2);
        using var model = new InfiniteErrorAtZero();

        var error = Assert.Throws<TrainingDivergedException>(() => new ImageClassifierTrainer(model, Options).Fit(data));

        Assert.Equal((1, 1), (error.Epoch, error.Step));
        Assert.Equal("quantised tensor", error.Source);
        Assert.Equal("fc", error.Layer);
        Assert.Equal(TensorRole.Error, error.Role);
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>(), "no update may run with non-finite values"));
    }

    [Fact]
    public void Cancellation_is_honoured_between_steps()
    {
        using var data = TrainingFixtures.RandomData(Count, seed: 3);
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);
        using var cancellation = new CancellationTokenSource();
        var trainer = new ImageClassifierTrainer(model, Options);
        var steps = 0;
        trainer.StepCompleted += p =>
        {
            steps++;
            if (p.Step == 2)
                cancellation.Cancel();
        };

        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(data, cancellationToken: cancellation.Token));
        Assert.Equal(2, steps);
    }

    /// <summary>Logits = linear(x) + sqrt(offset) with offset = 0: a finite loss whose gradient for offset is infinite.</summary>
    private sealed class SqrtAtZero : nn.Module<Tensor, Tensor>
    {
        private readonly Linear linear = nn.Linear(64, 10);
        private readonly Parameter offset = nn.Parameter(zeros(10));

        public SqrtAtZero()
            : base(nameof(SqrtAtZero)) => RegisterComponents();

        public override Tensor forward(Tensor input) => linear.call(input.flatten(1)) + offset.sqrt();
    }

    /// <summary>
    /// Logits = sqrt(z - detach(z)) + detach(z) for a quantised linear z: the loss is finite, but the error arriving
    /// at the layer's output in backward is infinite, so the error quantiser fails inside autograd.
    /// </summary>
    private sealed class InfiniteErrorAtZero : nn.Module<Tensor, Tensor>
    {
        private readonly Numerics.Layers.QuantizedLinear fc = new("fc", 64, 10, config: QuantizationConfig.Uniform(DfpFormat.SDfp(8, 1)));

        public InfiniteErrorAtZero()
            : base(nameof(InfiniteErrorAtZero)) => RegisterComponents();

        public override Tensor forward(Tensor input)
        {
            var z = fc.call(input.flatten(1));
            var frozen = z.detach();
            return (z - frozen).sqrt() + frozen;
        }
    }
}
