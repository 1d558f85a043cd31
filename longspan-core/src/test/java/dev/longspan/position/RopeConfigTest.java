package dev.longspan.position;

import dev.longspan.util.LongspanException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class RopeConfigTest {

    @Test
    void unknownKindIsAnErrorNamingItAndListingValidOnes() {
        assertThatThrownBy(() -> RopeKind.parse("longrope"))
                .isInstanceOf(LongspanException.class)
                .hasMessageContaining("'longrope'")
                .hasMessageContaining("yarn").hasMessageContaining("crd-ntk");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=su,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'su'");
        assertThat(RopeKind.parse("Dynamic_NTK")).isEqualTo(RopeKind.DYNAMIC_NTK);
    }

    @Test
    void specParsesEveryKnob() {
        RopeConfig c = RopeConfig.fromSpec("kind=yarn,base=10000,factor=8,orig=4096,pairing=half,dim=128,beta_fast=16,beta_slow=2,mscale=0.707,mscale_all_dim=0.707,truncate=false");
        assertThat(c.kind()).isEqualTo(RopeKind.YARN);
        assertThat(c.base()).isEqualTo(10000.0);
        assertThat(c.factor()).isEqualTo(8.0);
        assertThat(c.originalContext()).isEqualTo(4096);
        assertThat(c.headDim()).isEqualTo(128);
        assertThat(c.rotaryDims()).isEqualTo(128);
        assertThat(c.betaFast()).isEqualTo(16.0);
        assertThat(c.betaSlow()).isEqualTo(2.0);
        assertThat(c.truncate()).isFalse();
        assertThat(c.derivedAttentionFactor()).isEqualTo(1.0); // mscale == mscale_all_dim

        RopeConfig l3 = RopeConfig.fromSpec("kind=llama3,base=500000,factor=8,orig=8192,low_freq_factor=1,high_freq_factor=4,pairing=interleaved", 64);
        assertThat(l3.headDim()).isEqualTo(64);
        assertThat(l3.pairing()).isEqualTo(Pairing.INTERLEAVED);
        assertThat(l3.highFreqFactor()).isEqualTo(4.0);

        RopeConfig crd = RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=16,period=32768,offset=32768,grow=2000,offset_max=1048576,seed=7,ntk=dynamic,orig=4096");
        assertThat(crd.period()).isEqualTo(32768);
        assertThat(crd.offsetRange()).isEqualTo(32768);
        assertThat(crd.growSteps()).isEqualTo(2000);
        assertThat(crd.offsetMax()).isEqualTo(1 << 20);
        assertThat(crd.seed()).isEqualTo(7);
        assertThat(crd.dynamicBase()).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "kind=rope,base=10000,dim=64",
            "kind=rope,base=500000,dim=128,rot=64,pairing=interleaved",
            "kind=linear,factor=4,dim=64",
            "kind=ntk,factor=8,dim=64,base=10000",
            "kind=dynamic-ntk,factor=2,orig=2048,dim=128",
            "kind=yarn,factor=8,orig=4096,dim=128,beta_fast=32,beta_slow=1",
            "kind=yarn,factor=40,orig=4096,dim=64,mscale=1,mscale_all_dim=0.5,truncate=false",
            "kind=yarn,factor=4,orig=32768,dim=128,attn_factor=1.25",
            "kind=llama3,factor=8,orig=8192,dim=128,base=500000,low_freq_factor=1,high_freq_factor=4",
            "kind=crd-ntk,factor=16,period=32768,offset=1024,grow=2000,dim=128,seed=3",
            "kind=crd-ntk,factor=16,orig=4096,ntk=dynamic,dim=128",
            "kind=crd-ntk,period=256,offset=256,dim=32,seed=1,harmonic=true",
    })
    void specRoundTrips(String spec) {
        RopeConfig c = RopeConfig.fromSpec(spec);
        assertThat(RopeConfig.fromSpec(c.toSpec())).isEqualTo(c);
        assertThat(RopeConfig.fromMap(c.toMap())).isEqualTo(c);
        assertThat(c.toSpec()).startsWith("kind=" + c.kind().id + ",");
    }

    @Test
    void harmonicIsWrittenOnlyWhenOnSoSpecsWrittenBeforeItReadBackEqual() {
        String before = "kind=crd-ntk,base=10000,pairing=half,factor=1,period=256,offset=256,grow=0,offset_max=0,seed=1,ntk=static";
        RopeConfig old = RopeConfig.fromSpec(before, 32);
        assertThat(old.harmonic()).isFalse();
        assertThat(old.toShortSpec()).isEqualTo(before);
        RopeConfig on = RopeConfig.fromSpec(before + ",harmonic=true", 32);
        assertThat(on.harmonic()).isTrue();
        assertThat(on.toShortSpec()).isEqualTo(before + ",harmonic=true");
        assertThat(on).isNotEqualTo(old);
        // a kind without a period ignores the knob, as every knob that does not apply
        assertThat(RopeConfig.builder(RopeKind.ROPE, 32).harmonic(true).build().harmonic()).isFalse();
    }

    @Test
    void knobsThatDoNotApplyToTheKindHoldTheirDefaultsSoBuiltConfigsRoundTripToo() {
        // a builder can set any knob; the ones the kind does not read are reset when built
        RopeConfig stray = RopeConfig.builder(RopeKind.ROPE, 64).base(500000).factor(8).originalContext(4096).betaFast(16)
                .lowFreqFactor(2).period(256).seed(7).dynamicBase(true).truncate(false).build();
        assertThat(stray).isEqualTo(RopeConfig.plain(500000, 64));
        assertThat(RopeConfig.fromSpec(stray.toSpec())).isEqualTo(stray);
        RopeConfig yarn = RopeConfig.builder(RopeKind.YARN, 64).factor(8).originalContext(4096).betaFast(16).period(256).seed(7).build();
        assertThat(yarn.betaFast()).isEqualTo(16);
        assertThat(yarn.period()).isZero();
        assertThat(yarn.seed()).isZero();
        assertThat(RopeConfig.fromSpec(yarn.toSpec())).isEqualTo(yarn);
        // and what applies is kept exactly, including from a kind that shares knobs
        RopeConfig crd = RopeConfig.builder(RopeKind.CRD_NTK, 64).factor(4).period(256).offsetRange(64).seed(7).build();
        assertThat(crd.toBuilder().factor(2).build()).extracting(RopeConfig::period, RopeConfig::offsetRange, RopeConfig::seed, RopeConfig::factor)
                .containsExactly(256L, 64L, 7L, 2.0);
        // the short form leaves out dim, and rot when it is the whole head
        assertThat(RopeConfig.fromSpec("kind=rope,dim=64,rot=32").toShortSpec()).isEqualTo("kind=rope,base=10000,rot=32,pairing=half");
        assertThat(RopeConfig.fromSpec("kind=rope,dim=64").toShortSpec()).isEqualTo("kind=rope,base=10000,pairing=half");
    }

    @Test
    void badSpecErrorsNameTheField() {
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=yarn,factor=abc,orig=4096,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'factor'").hasMessageContaining("abc");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,bogus=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'bogus'").hasMessageContaining("valid fields");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=linear,dim=64,factor=2,beta_fast=32"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'beta_fast'").hasMessageContaining("linear");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=yarn,factor=8,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'orig'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,rot=63"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'rot'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,base=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'base'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,base=10000"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'dim'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64", 32))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'dim'").hasMessageContaining("32");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("twice");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,,dim=64"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("empty entry");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("key=value");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=rope,dim=64,pairing=zigzag"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'zigzag'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=llama3,dim=64,factor=8,orig=8192,low_freq_factor=4,high_freq_factor=1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'high_freq_factor'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=8,ntk=sometimes"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'ntk'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,factor=8,period=-1"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'period'");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,harmonic=true"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'harmonic'").hasMessageContaining("period");
        assertThatThrownBy(() -> RopeConfig.fromSpec("kind=crd-ntk,dim=64,period=256,harmonic=maybe"))
                .isInstanceOf(LongspanException.class).hasMessageContaining("'harmonic'");
        assertThatThrownBy(() -> RopeConfig.fromSpec(" "))
                .isInstanceOf(LongspanException.class).hasMessageContaining("empty");
    }
}
