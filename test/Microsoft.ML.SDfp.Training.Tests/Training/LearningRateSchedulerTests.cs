using Xunit;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

public sealed class LearningRateSchedulerTests
{
    [Fact]
    public void Constant_schedule_keeps_the_base_rate_on_every_step()
    {
        var scheduler = new LearningRateScheduler(new TrainingOptions { Epochs = 3, LearningRate = 0.05, Schedule = LearningRateSchedule.Constant }, stepsPerEpoch: 10);

        Assert.All(Enumerable.Range(0, 30), step => Assert.Equal(0.05, scheduler.At(step)));
    }

    [Fact]
    public void Step_schedule_multiplies_by_gamma_every_step_size_epochs()
    {
        var scheduler = new LearningRateScheduler(
            new TrainingOptions { Epochs = 6, LearningRate = 0.1, Schedule = LearningRateSchedule.Step, StepSize = 2, StepGamma = 0.5 }, stepsPerEpoch: 10);

        Assert.Equal(0.1, scheduler.At(0), 12);
        Assert.Equal(0.1, scheduler.At(19), 12);    // last step of epoch 2 (0-based epoch 1)
        Assert.Equal(0.05, scheduler.At(20), 12);   // first step of the third epoch
        Assert.Equal(0.05, scheduler.At(39), 12);
        Assert.Equal(0.025, scheduler.At(40), 12);
        Assert.Equal(0.025, scheduler.At(59), 12);
    }

    [Fact]
    public void Cosine_schedule_starts_at_the_base_rate_halves_midway_and_ends_near_zero()
    {
        var scheduler = new LearningRateScheduler(new TrainingOptions { Epochs = 4, LearningRate = 0.2, Schedule = LearningRateSchedule.Cosine }, stepsPerEpoch: 25);

        Assert.Equal(0.2, scheduler.At(0), 12);
        Assert.Equal(0.1, scheduler.At(50), 12);
        Assert.Equal(0.2 * 0.5 * (1 + Math.Cos(Math.PI * 25 / 100)), scheduler.At(25), 12);
        Assert.InRange(scheduler.At(99), 0, 0.2 * 1e-3);
        for (var step = 1; step < 100; step++)
            Assert.True(scheduler.At(step) < scheduler.At(step - 1), $"cosine must decrease at step {step}");
    }

    [Fact]
    public void Warmup_rises_linearly_to_the_base_rate_then_the_schedule_takes_over()
    {
        var scheduler = new LearningRateScheduler(
            new TrainingOptions { Epochs = 5, LearningRate = 0.1, WarmupEpochs = 1, Schedule = LearningRateSchedule.Cosine }, stepsPerEpoch: 10);

        Assert.Equal(10, scheduler.WarmupSteps);
        Assert.Equal(0.01, scheduler.At(0), 12);
        Assert.Equal(0.05, scheduler.At(4), 12);
        Assert.Equal(0.1, scheduler.At(9), 12);
        Assert.Equal(0.1, scheduler.At(10), 12);    // cosine starts at the base rate after warm-up
        Assert.Equal(0.05, scheduler.At(30), 12);   // halfway through the 40 cosine steps
    }

    [Fact]
    public void Invalid_options_name_the_property_and_value()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new LearningRateScheduler(new TrainingOptions { LearningRate = -1 }, 10));
        Assert.Contains("LearningRate", error.Message);
        Assert.Contains("-1", error.Message);

        error = Assert.Throws<ArgumentOutOfRangeException>(() => new TrainingOptions { Epochs = 2, WarmupEpochs = 3 }.Validate());
        Assert.Contains("WarmupEpochs", error.Message);
    }
}
